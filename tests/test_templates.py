"""The template registry: each refusal names the template, the field and the reason."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mission.errors import InvalidConfig, TemplateFileError, TemplateNotFound
from mission.models import Template
from mission.plan import merge_config
from mission.templates import (
    TemplateRegistry,
    department_stages,
    outcome_logic_hash,
    parse_templates,
    read_templates_file,
)

BASE: dict[str, Any] = {
    "id": "t1",
    "name": "Test",
    "sector": "Finance",
    "goal": "test",
    "squad": [
        {"role": "a", "department": "Security", "agent": "util.noop"},
        {"role": "b", "department": "Finance", "agent": "util.noop"},
    ],
    "dependencies": {"Finance": ["Security"]},
    "defaults": {"budget": 1000, "ttl": 600},
    "limits": {"budget": {"min": 100, "max": 50000}, "ttl": {"min": 30, "max": 7200}},
}


def problems_of(*templates: dict[str, Any]) -> list[tuple[str, str, str]]:
    _, problems = parse_templates({"templates": list(templates)})
    return [(p.template_id, p.field, p.reason) for p in problems]


def variant(**changes: Any) -> dict[str, Any]:
    t = copy.deepcopy(BASE)
    t.update(changes)
    return t


def test_a_good_template_loads_and_gets_its_hash_computed() -> None:
    templates, problems = parse_templates({"templates": [BASE]})
    assert problems == []
    assert templates[0].outcome_logic_hash == outcome_logic_hash(templates[0])
    assert templates[0].outcome_logic_hash.startswith("sha256:")


@pytest.mark.parametrize(
    ("template", "field", "reason"),
    [
        (variant(dependencies={"Legal": ["Security"]}), "dependencies.Legal", "unknown department 'Legal'"),
        (variant(dependencies={"Finance": ["Ops"]}), "dependencies.Finance", "unknown department 'Ops'"),
        (
            variant(dependencies={"Finance": ["Security"], "Security": ["Finance"]}),
            "dependencies",
            "dependency cycle",
        ),
        (variant(dependencies={"Finance": ["Finance"]}), "dependencies.Finance", "cannot depend on itself"),
        (
            variant(squad=[*BASE["squad"], {"role": "a", "department": "Finance", "agent": "util.noop"}]),
            "squad[2].role",
            "duplicate role 'a'",
        ),
        (variant(defaults={"budget": 10, "ttl": 600}), "defaults.budget", "outside the limits"),
        (variant(defaults={"budget": 1000, "ttl": 10_000}), "defaults.ttl", "outside the limits"),
        (
            variant(limits={"budget": {"min": 5000, "max": 100}, "ttl": {"min": 30, "max": 7200}}),
            "limits.budget",
            "above max",
        ),
        (variant(outcome_logic_hash="sha256:" + "0" * 64), "outcome_logic_hash", "tampered"),
        (
            variant(squad=[{"role": "a", "department": "Security", "agent": "nosuch.agent"}], dependencies={}),
            "squad[0].agent",
            "unknown agent",
        ),
        (
            variant(squad=[{"role": "a", "department": "Security", "agent": "util:nothing_here"}], dependencies={}),
            "squad[0].agent",
            "unknown agent",
        ),
        (variant(outcome={"policy": "quorum", "count": 5}), "outcome.count", "exceeds the squad"),
        (variant(outcome={"policy": "quorum"}), "outcome", "needs a count"),
        (variant(budget=5), "budget", "Extra inputs"),
        (variant(squad=[{"role": "Bad Role!", "department": "X", "agent": "util.noop"}]), "squad[0].role", "match"),
        (variant(squad=[]), "squad", "at least 1"),
        (
            variant(
                squad=[
                    {"role": "a", "department": "Security", "agent": "util.noop", "budget_share": 0.6},
                    {"role": "b", "department": "Finance", "agent": "util.noop", "budget_share": 0.5},
                    {"role": "c", "department": "Finance", "agent": "util.noop"},
                ]
            ),
            "squad.budget_share",
            "leaving nothing",
        ),
    ],
)
def test_each_refusal_names_template_field_and_reason(template: dict[str, Any], field: str, reason: str) -> None:
    found = problems_of(template)
    assert any(tid == "t1" and f == field and reason in r for tid, f, r in found), found


def test_every_problem_of_a_file_is_reported_in_one_run() -> None:
    """A malformed field does not hide what is wrong elsewhere: each template's problems, all of them."""
    broken = variant(dependencies={"Finance": ["Security"], "Security": ["Finance"]})
    del broken["limits"], broken["goal"]
    broken["defaults"] = {"budget": -5, "ttl": 600}
    broken["squad"] = [*BASE["squad"], {"role": "a", "department": "Finance", "agent": "nosuch.agent"}]
    other = variant(id="t2", outcome={"policy": "quorum", "count": 9}, extra=True)
    found = problems_of(broken, other)
    assert [(tid, field) for tid, field, _ in found] == [
        ("t1", "goal"),
        ("t1", "defaults.budget"),
        ("t1", "squad[2].role"),
        ("t1", "squad[2].agent"),
        ("t1", "dependencies"),
        ("t2", "extra"),
        ("t2", "outcome.count"),
    ], found
    reasons = dict(((tid, field), reason) for tid, field, reason in found)
    assert reasons["t1", "goal"] == "Field required"
    assert reasons["t1", "dependencies"].startswith("dependency cycle: ")
    assert reasons["t1", "squad[2].role"] == "duplicate role 'a'"
    assert reasons["t2", "outcome.count"] == "quorum 9 exceeds the squad of 2"


def test_a_template_without_limits_takes_overrides_up_to_its_defaults() -> None:
    unbounded = variant()
    del unbounded["limits"]
    [template], problems = parse_templates({"templates": [unbounded]})
    assert problems == []
    assert template.limits is None
    bounds = template.bounds
    assert (bounds.budget.min, bounds.budget.max) == (Decimal("0.01"), Decimal(1000))
    assert (bounds.ttl.min, bounds.ttl.max) == (1, 600)
    lower = merge_config(template, {"budget": "$250.50", "ttl": "5 minutes"}, max_inputs_bytes=65536)
    assert (lower.budget, lower.ttl) == (Decimal("250.50"), 300)
    with pytest.raises(InvalidConfig) as refused:
        merge_config(template, {"budget": "1000.01", "ttl": 601}, max_inputs_bytes=65536)
    assert [(p.field, p.message) for p in refused.value.problems] == [
        ("budget", "1000.01 is outside this template's range 0.01..1000"),
        ("ttl", "601 seconds is outside this template's range 1..600"),
    ]


def test_duplicate_template_ids_are_refused() -> None:
    assert ("t1", "id", "duplicate template id") in problems_of(BASE, BASE)


def test_not_a_templates_document() -> None:
    assert problems_of_raw([1, 2]) == [("-", "templates", 'the file must be {"templates": [ ... ]}')]


def problems_of_raw(raw: Any) -> list[tuple[str, str, str]]:
    _, problems = parse_templates(raw)
    return [(p.template_id, p.field, p.reason) for p in problems]


def test_a_correct_declared_hash_is_accepted_and_any_logic_change_breaks_it() -> None:
    template = Template.model_validate(BASE)
    good = variant(outcome_logic_hash=outcome_logic_hash(template))
    assert problems_of(good) == []
    edited = copy.deepcopy(good)
    edited["squad"][1]["max_tries"] = 3
    assert [f for _, f, _ in problems_of(edited)] == ["outcome_logic_hash"]
    # a change outside the logic (name, defaults) keeps the hash
    renamed = copy.deepcopy(good)
    renamed["name"] = "Renamed"
    renamed["defaults"]["budget"] = 2000
    assert problems_of(renamed) == []


def test_read_file_refuses_bad_json_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TemplateFileError) as caught:
        read_templates_file(bad)
    assert "not valid JSON" in caught.value.message
    with pytest.raises(TemplateFileError) as caught:
        read_templates_file(tmp_path / "missing.json")
    assert "cannot read" in caught.value.message
    cyclic = tmp_path / "cyclic.json"
    cyclic.write_text(
        json.dumps({"templates": [variant(dependencies={"Finance": ["Security"], "Security": ["Finance"]})]})
    )
    with pytest.raises(TemplateFileError) as caught:
        read_templates_file(cyclic)
    assert "template t1: dependencies: dependency cycle" in caught.value.message


def test_registry_filters_by_sector_case_insensitively() -> None:
    other = variant(id="t2", sector="Security")
    registry = TemplateRegistry(parse_templates({"templates": [BASE, other]})[0])
    assert [t.id for t in registry.all("finance")] == ["t1"]
    assert [t.id for t in registry.all(" SECURITY ")] == ["t2"]
    assert registry.all("Nothing") == []
    assert len(registry.all()) == 2
    with pytest.raises(TemplateNotFound):
        registry.get("t3")


def test_department_stages_are_topological_layers() -> None:
    chain = variant(
        squad=[
            {"role": "r", "department": "Report", "agent": "util.noop"},
            {"role": "a", "department": "Recon", "agent": "util.noop"},
            {"role": "b", "department": "Probe", "agent": "util.noop"},
            {"role": "c", "department": "Probe2", "agent": "util.noop"},
        ],
        dependencies={"Probe": ["Recon"], "Probe2": ["Recon"], "Report": ["Probe", "Probe2"]},
    )
    template = Template.model_validate(chain)
    assert department_stages(template) == [["Recon"], ["Probe", "Probe2"], ["Report"]]
