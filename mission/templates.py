"""The template registry: load the templates file once, refuse a bad one with precise reasons."""

from __future__ import annotations

import graphlib
import hashlib
import json
from collections.abc import Collection, Iterable
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

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


def check_template(
    template: Template, *, verify_agents: bool = True, skip: Collection[str] = (), template_id: str | None = None
) -> list[TemplateProblem]:
    """Everything pydantic cannot see alone: graph, roles, limits, hash, agents. The fields in
    ``skip`` (malformed, already reported) are not looked at, nor are checks that need them."""
    problems: list[TemplateProblem] = []
    where = template_id if template_id is not None else template.id
    has = {name: name not in skip for name in Template.model_fields}

    def problem(field: str, reason: str) -> None:
        problems.append(TemplateProblem(where, field, reason))

    if has["squad"]:
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

        shares = [a.budget_share for a in template.squad]
        if None in shares and sum(s for s in shares if s is not None) >= 1:
            problem("squad.budget_share", "explicit shares reach 1, leaving nothing for agents without one")

    if has["squad"] and has["dependencies"]:
        departments = set(template.departments)
        graph_problems = len(problems)
        for dept, upstream in template.dependencies.items():
            if dept not in departments:
                problem(f"dependencies.{dept}", f"unknown department {dept!r} (squad has {sorted(departments)})")
            for up in upstream:
                if up not in departments:
                    problem(f"dependencies.{dept}", f"unknown department {up!r} (squad has {sorted(departments)})")
                if up == dept:
                    problem(f"dependencies.{dept}", "a department cannot depend on itself")
        if len(problems) == graph_problems:
            try:
                department_stages(template)
            except graphlib.CycleError as exc:
                cycle = " -> ".join(exc.args[1])
                problem("dependencies", f"dependency cycle: {cycle}")

    quorum = template.outcome.count if has["outcome"] else None
    if has["squad"] and quorum is not None and quorum > len(template.squad):
        problem("outcome.count", f"quorum {template.outcome.count} exceeds the squad of {len(template.squad)}")

    if has["defaults"] and has["limits"] and template.limits is not None:
        limits, defaults = template.limits, template.defaults
        for name, low, high, value in (
            ("budget", limits.budget.min, limits.budget.max, defaults.budget),
            ("ttl", limits.ttl.min, limits.ttl.max, defaults.ttl),
        ):
            if low > high:
                problem(f"limits.{name}", f"min {low} is above max {high}")
            elif not low <= value <= high:
                problem(f"defaults.{name}", f"default {value} lies outside the limits {low}..{high}")

    if template.outcome_logic_hash is not None and not problems and not skip:
        actual = outcome_logic_hash(template)
        if template.outcome_logic_hash != actual:
            problem(
                "outcome_logic_hash",
                f"declared {template.outcome_logic_hash} but squad, dependencies and outcome hash to "
                f"{actual}: the logic changed without review, or the file was tampered with",
            )
    return problems


@cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    """Validates one field of a template alone, with its constraints."""
    field = Template.model_fields[name]
    return TypeAdapter(Annotated[field.annotation, field])  # type: ignore[arg-type]


def _well_formed_part(item: dict[str, Any], malformed: set[str]) -> Template:
    """The template's fields that are well-formed on their own (``malformed`` holds the others),
    unchecked as a whole: enough for the checks that need only those fields."""
    values: dict[str, Any] = {}
    for name, field in Template.model_fields.items():
        if name in malformed:
            continue
        if name in item:
            try:
                values[name] = _field_adapter(name).validate_python(item[name])
            except ValidationError:  # (not expected: the whole template's errors named it)
                malformed.add(name)
        elif not field.is_required():
            values[name] = field.get_default(call_default_factory=True)
    return Template.model_construct(**values)


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
            errors = exc.errors(include_url=False)
            for err in errors:
                problems.append(TemplateProblem(template_id, _location(err["loc"]), err["msg"]))
            if isinstance(item, dict) and all(err["loc"] for err in errors):
                # what else is wrong, in the fields that are well-formed: every problem in one run
                malformed = {str(err["loc"][0]) for err in errors}
                part = _well_formed_part(item, malformed)
                problems.extend(
                    check_template(part, verify_agents=verify_agents, skip=malformed, template_id=template_id)
                )
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
