"""Mission Control's committed bundle (server/static/ui/) is what its sources (ui/) build.

Without Node: the hash of the sources recorded at build time (source.sha256) must match the
sources now, so a change to ui/ without `make ui` fails here. With Node (and npm): the sources are
built again in a temporary copy and the output must be byte for byte the committed bundle, and the
page's unit tests (Vitest) run there too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.ui import UI_DIR

REPO = Path(__file__).resolve().parent.parent
UI_SRC = REPO / "ui"
MAX_GZIP_BYTES = 300_000
MIN_NODE = (20, 19)  # Vite 8's floor


def node_version(text: str) -> tuple[int, int]:
    """``v20.19.2`` -> (20, 19)."""
    major, minor, *_ = text.lstrip("v").split(".")
    return int(major), int(minor)


# The build's inputs, as ui/scripts/hash.mjs lists them: files, and folders taken whole (but tests).
INPUTS = [
    ".npmrc",
    "index.html",
    "package-lock.json",
    "package.json",
    "scripts",
    "src",
    "tsconfig.json",
    "vite.config.ts",
]


def source_files(root: Path) -> list[str]:
    """What the build hashes (ui/scripts/hash.mjs)."""
    found = []
    for name in INPUTS:
        top = root / name
        paths = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else [top]
        found += [p.relative_to(root).as_posix() for p in paths if not p.name.endswith(".test.ts")]
    return sorted(found)


def test_hash_inputs_are_the_same_list_in_both_languages() -> None:
    script = (UI_SRC / "scripts" / "hash.mjs").read_text()
    listed = re.search(r"INPUTS = \[(.*?)\];", script, re.S)
    assert listed is not None
    assert re.findall(r'"([^"]+)"', listed.group(1)) == INPUTS


def test_generated_statuses_are_a_hash_input() -> None:
    """ui/src/statuses.ts (written by `make schema`) is built into the page: a change must call for `make ui`."""
    assert "src/statuses.ts" in source_files(UI_SRC)


def source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for rel in source_files(root):
        digest.update(rel.encode() + b"\0")
        digest.update((root / rel).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def bundle_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_bundle_is_built_from_the_current_sources() -> None:
    recorded = (UI_DIR / "source.sha256").read_text().strip()
    assert recorded == source_hash(UI_SRC), "ui/ changed since the bundle was built: run `make ui` and commit"


def test_bundle_is_self_contained_and_small() -> None:
    page = (UI_DIR / "index.html").read_text()
    assets = sorted((UI_DIR / "assets").iterdir())
    for asset in assets:
        assert f"/ui/assets/{asset.name}" in page
    text = page + "".join(a.read_text(errors="replace") for a in assets if a.suffix == ".css")
    assert "http://" not in text and "https://" not in text, "the page or its styles load something from elsewhere"
    gzipped = sum(len(gzip.compress(a.read_bytes(), 9)) for a in assets)
    assert gzipped <= MAX_GZIP_BYTES, f"bundle is {gzipped} bytes gzipped"


def test_lock_file_has_no_download_addresses() -> None:
    lock = (UI_SRC / "package-lock.json").read_text()
    assert '"resolved"' not in lock
    assert "omit-lockfile-registry-resolved=true" in (UI_SRC / ".npmrc").read_text()


@pytest.fixture(scope="module")
def built_copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of ui/ with its pinned packages installed (npm ci); skipped when Node is absent."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if node is None or npm is None:
        pytest.skip("Node and npm are not installed (.ci/run installs them): the bundle's hash was still checked")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if node_version(version) < MIN_NODE:
        pytest.skip(f"Vite 8 needs Node {'.'.join(map(str, MIN_NODE))} or newer, this is {version}")
    root = tmp_path_factory.mktemp("ui")
    copy = root / "ui"
    shutil.copytree(UI_SRC, copy, ignore=shutil.ignore_patterns("node_modules"))
    install = [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"]
    subprocess.run(install, cwd=copy, check=True, capture_output=True, timeout=600)
    yield copy


@pytest.mark.timeout(900)
def test_sources_rebuild_to_the_committed_bundle(built_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        ["npm", "run", "build"],
        cwd=built_copy,
        env={**_env(), "UI_OUT_DIR": str(out)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rebuilt, committed = bundle_files(out), bundle_files(UI_DIR)
    assert rebuilt.keys() == committed.keys()
    for name, data in rebuilt.items():
        assert data == committed[name], f"{name} differs from the committed bundle: run `make ui` and commit"


@pytest.mark.timeout(300)
def test_page_logic_unit_tests_pass(built_copy: Path) -> None:
    result = subprocess.run(
        ["npx", "vitest", "run"], cwd=built_copy, env=_env(), capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def _env() -> dict[str, str]:
    return {**os.environ, "CI": "1", "NO_COLOR": "1"}
