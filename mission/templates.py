"""The template registry: load the templates file once, refuse a bad one with precise reasons."""

from __future__ import annotations

import graphlib
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mission.agents import resolve_agent
from mission.errors import AgentNotFound, TemplateFileError, TemplateNotFound, TemplateProblem
from mission.models import Template


def outcome_logic_hash(template: Template) -> str:
    """sha256 of the canonical JSON of squad + dependencies + outcome.

    Canonical: keys sorted, upstream lists sorted, fields left at their default omitted (so a
    field added to the format later, with a default, leaves existing hashes valid).
    """
    logic = {
        "squad": [agent.model_dump(mode="json", exclude_defaults=True) for agent in template.squad],
        "dependencies": {dept: sorted(ups) for dept, ups in sorted(template.dependencies.items())},
        "outcome": template.outcome.model_dump(mode="json", exclude_defaults=True),
    }
    canonical = json.dumps(logic, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def department_stages(template: Template) -> list[list[str]]:
    """Departments in topological layers: every department after all it depends on."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for dept in template.departments:
        sorter.add(dept, *template.dependencies.get(dept, ()))
    sorter.prepare()
    order = {dept: i for i, dept in enumerate(template.departments)}
    stages: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda d: order.get(d, len(order)))
        stages.append(ready)
        sorter.done(*ready)
    return stages


def check_template(template: Template, *, verify_agents: bool = True) -> list[TemplateProblem]:
    """Everything pydantic cannot see alone: graph, roles, limits, hash, agents."""
    problems: list[TemplateProblem] = []

    def problem(field: str, reason: str) -> None:
        problems.append(TemplateProblem(template.id, field, reason))

    seen_roles: set[str] = set()
    for i, agent in enumerate(template.squad):
        if agent.role in seen_roles:
            problem(f"squad[{i}].role", f"duplicate role {agent.role!r}")
        seen_roles.add(agent.role)
        if verify_agents:
            try:
                resolve_agent(agent.agent)
            except AgentNotFound as exc:
                problem(f"squad[{i}].agent", f"unknown agent: {exc.message}")

    departments = set(template.departments)
    for dept, upstream in template.dependencies.items():
        if dept not in departments:
            problem(f"dependencies.{dept}", f"unknown department {dept!r} (squad has {sorted(departments)})")
        for up in upstream:
            if up not in departments:
                problem(f"dependencies.{dept}", f"unknown department {up!r} (squad has {sorted(departments)})")
            if up == dept:
                problem(f"dependencies.{dept}", "a department cannot depend on itself")
    if not problems:
        try:
            department_stages(template)
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            problem("dependencies", f"dependency cycle: {cycle}")

    shares = [a.budget_share for a in template.squad]
    if None in shares and sum(s for s in shares if s is not None) >= 1:
        problem("squad.budget_share", "explicit shares reach 1, leaving nothing for agents without one")

    if template.outcome.count is not None and template.outcome.count > len(template.squad):
        problem("outcome.count", f"quorum {template.outcome.count} exceeds the squad of {len(template.squad)}")

    limits, defaults = template.limits, template.defaults
    for name, low, high, value in (
        ("budget", limits.budget.min, limits.budget.max, defaults.budget),
        ("ttl", limits.ttl.min, limits.ttl.max, defaults.ttl),
    ):
        if low > high:
            problem(f"limits.{name}", f"min {low} is above max {high}")
        elif not low <= value <= high:
            problem(f"defaults.{name}", f"default {value} lies outside the limits {low}..{high}")

    if template.outcome_logic_hash is not None and not problems:
        actual = outcome_logic_hash(template)
        if template.outcome_logic_hash != actual:
            problem(
                "outcome_logic_hash",
                f"declared {template.outcome_logic_hash} but squad, dependencies and outcome hash to "
                f"{actual}: the logic changed without review, or the file was tampered with",
            )
    return problems


def _location(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(template)"


def parse_templates(raw: Any, *, verify_agents: bool = True) -> tuple[list[Template], list[TemplateProblem]]:
    """Templates from decoded JSON, with every problem found (not just the first)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("templates"), list):
        return [], [TemplateProblem("-", "templates", 'the file must be {"templates": [ ... ]}')]
    templates: list[Template] = []
    problems: list[TemplateProblem] = []
    seen_ids: set[str] = set()
    for i, item in enumerate(raw["templates"]):
        template_id = str(item.get("id", f"#{i}")) if isinstance(item, dict) else f"#{i}"
        try:
            template = Template.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                problems.append(TemplateProblem(template_id, _location(err["loc"]), err["msg"]))
            continue
        if template.id in seen_ids:
            problems.append(TemplateProblem(template.id, "id", "duplicate template id"))
            continue
        seen_ids.add(template.id)
        found = check_template(template, verify_agents=verify_agents)
        problems.extend(found)
        if not found and template.outcome_logic_hash is None:
            template = template.model_copy(update={"outcome_logic_hash": outcome_logic_hash(template)})
        templates.append(template)
    return templates, problems


def read_templates_file(path: Path, *, verify_agents: bool = True) -> list[Template]:
    """Load and validate a templates file; `TemplateFileError` lists every problem."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateFileError(str(path), [TemplateProblem("-", "file", f"cannot read: {exc.strerror}")]) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TemplateFileError(str(path), [TemplateProblem("-", "file", f"not valid JSON: {exc}")]) from None
    templates, problems = parse_templates(raw, verify_agents=verify_agents)
    if problems:
        raise TemplateFileError(str(path), problems)
    return templates


class TemplateRegistry:
    """The validated templates, by id, in file order."""

    def __init__(self, templates: Iterable[Template]) -> None:
        self._by_id = {t.id: t for t in templates}

    @classmethod
    def load(cls, path: Path) -> TemplateRegistry:
        return cls(read_templates_file(path))

    def get(self, template_id: str) -> Template:
        try:
            return self._by_id[template_id]
        except KeyError:
            raise TemplateNotFound(template_id) from None

    def find(self, template_id: str) -> Template | None:
        return self._by_id.get(template_id)

    def all(self, sector: str | None = None) -> list[Template]:
        """Every template, or those of one sector (case-insensitive)."""
        if sector is None:
            return list(self._by_id.values())
        wanted = sector.strip().casefold()
        return [t for t in self._by_id.values() if t.sector.casefold() == wanted]

    def __len__(self) -> int:
        return len(self._by_id)
