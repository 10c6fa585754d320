"""The vendored GraphiQL page works offline: it loads only files shipped in server/static/graphiql."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from server.graphiql import STATIC_DIR, STATIC_URL, graphiql_html

INDEX = STATIC_DIR / "index.html"
NOT_VENDORED = {"index.html", "README.md", "VERSIONS.txt"}
# Hosts a bundle could pull code, styles or fonts from at run time (graphiql's bundle mentions "jsdelivr, unpkg"
# in an error message's prose, so match host names, not bare words).
CDN_HOSTS = (
    "unpkg.com",
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "esm.sh",
    "cdn.skypack.dev",
    "fonts.googleapis.com",
    "fonts.gstatic.com",
    "use.fontawesome.com",
)


class _Refs(HTMLParser):
    """Every URL-valued attribute of the page, with its tag."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append((tag, values))
        for name in ("src", "href", "action", "formaction", "data", "poster", "srcset"):
            if name in values:
                self.refs.append((tag, name, values[name]))


def _page() -> _Refs:
    parser = _Refs()
    parser.feed(INDEX.read_text(encoding="utf-8"))
    return parser


def _versions() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in (STATIC_DIR / "VERSIONS.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            package, source, name, digest = line.split()
            rows.append((package, source, name, digest))
    return rows


def _vendored() -> list[Path]:
    return sorted(p for p in STATIC_DIR.iterdir() if p.is_file() and p.name not in NOT_VENDORED)


def test_page_references_only_shipped_files() -> None:
    refs = _page().refs
    assert refs, "index.html references no asset at all"
    referenced = set()
    for tag, attr, value in refs:
        if tag == "link" and attr == "href" and value == "data:,":
            continue  # the empty favicon, which keeps the browser from asking for /favicon.ico
        assert value.startswith(STATIC_URL + "/"), f"<{tag} {attr}={value!r}> is not under {STATIC_URL}/"
        name = value.removeprefix(STATIC_URL + "/")
        assert "/" not in name and name not in ("", ".", ".."), value
        assert (STATIC_DIR / name).is_file(), f"<{tag} {attr}={value!r}>: no such file in {STATIC_DIR}"
        referenced.add(name)
    bundles = {p.name for p in _vendored() if p.suffix in (".js", ".css")}
    assert referenced == bundles, "every shipped bundle is used by the page, and only those"


def test_page_names_no_external_origin() -> None:
    html = INDEX.read_text(encoding="utf-8")
    for needle in ("http://", "https://", "//"):
        assert needle not in html, f"index.html contains {needle!r}"
    for host in CDN_HOSTS:
        assert host not in html.lower()


def test_page_has_no_external_script_or_stylesheet() -> None:
    tags = _page().tags
    scripts = [attrs["src"] for tag, attrs in tags if tag == "script" and "src" in attrs]
    styles = [attrs["href"] for tag, attrs in tags if tag == "link" and "stylesheet" in attrs.get("rel", "")]
    assert scripts and styles
    for url in scripts + styles:
        assert re.match(r"^/[^/]", url), f"{url!r} is not a same-origin, root-relative path"
    csp = [
        attrs["content"]
        for tag, attrs in tags
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'self'" in csp[0] and "connect-src 'self'" in csp[0]


def test_page_uses_same_origin_endpoint_with_websocket_subscriptions() -> None:
    html = INDEX.read_text(encoding="utf-8")
    assert 'GRAPHQL_PATH = "/graphql"' in html
    assert "GraphiQL.createFetcher" in html and "subscriptionUrl" in html
    assert '"wss:"' in html and '"ws:"' in html


@pytest.mark.parametrize("path", [p for p in _vendored() if p.suffix == ".css"], ids=lambda p: p.name)
def test_stylesheets_load_nothing_external(path: Path) -> None:
    css = path.read_text(encoding="utf-8")
    assert "@import" not in css
    for url in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
        assert url.startswith("data:"), f"{path.name} loads {url[:80]!r}"


@pytest.mark.parametrize("path", [p for p in _vendored() if p.suffix in (".js", ".css")], ids=lambda p: p.name)
def test_bundles_name_no_cdn(path: Path) -> None:
    text = path.read_text(encoding="utf-8").lower()
    for host in CDN_HOSTS:
        assert host not in text, f"{path.name} mentions {host}"


def test_versions_list_every_vendored_file_with_its_checksum() -> None:
    rows = _versions()
    listed = {name for _, _, name, _ in rows}
    assert listed == {p.name for p in _vendored()}
    for package, _source, name, digest in rows:
        assert re.fullmatch(r"@?[a-z0-9][a-z0-9./-]*@\d+\.\d+\.\d+", package), package
        actual = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} does not match VERSIONS.txt"
    packages = {package for package, _, _, _ in rows}
    licensed = {package for package, _, name, _ in rows if name.startswith("LICENSE.")}
    assert packages == licensed, f"no LICENSE file for {packages - licensed}"


def test_graphiql_html_is_the_page_read_once() -> None:
    assert graphiql_html() == INDEX.read_text(encoding="utf-8")
    assert graphiql_html() is graphiql_html()
