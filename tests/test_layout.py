"""The repository's shape: the committed SDL matches the code, names resolve here, imports flow one way."""

from __future__ import annotations

import ast
from pathlib import Path

import config
import schema
from config.settings import Settings
from schema.schema import build_schema

REPO = Path(__file__).resolve().parent.parent


def test_committed_sdl_matches_the_code() -> None:
    committed = (REPO / "schema.graphql").read_text()
    current = build_schema(Settings()).as_str() + "\n"
    assert committed == current, "schema.graphql is out of date: run `make schema` and commit it"


def test_generic_package_names_resolve_inside_the_repo() -> None:
    for package in (config, schema):
        assert Path(package.__file__ or "").resolve().is_relative_to(REPO), package.__file__


def imported_packages(package: str) -> set[str]:
    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_imports_flow_one_way() -> None:
    api_layer = {"schema", "resolvers", "server"}
    assert not imported_packages("mission") & (api_layer | {"workers"})
    assert not imported_packages("config") & (api_layer | {"workers", "mission"})
    assert not imported_packages("workers") & api_layer


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`MISSION_{name.upper()}`" not in readme]
    assert not missing, f"README's configuration table lacks {missing}"
