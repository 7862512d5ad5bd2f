"""GraphiQL's page and files, served from the package (gateway/http/graphiql.py, gateway/http/static/): the shipped
files are what scripts/refresh_graphiql.py recorded, the page loads only them and the gateway's own script
under its Content-Security-Policy, and GRAPHIQL / GRAPHIQL_HEADERS do what they say. The page in a real
browser: tests/test_browser.py."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gateway.http.graphiql import CONTENT_SECURITY_POLICY, EXAMPLE_QUERY, STATIC
from tests.support import Gateway, Upstream, start_gateways_with, stop_gateways

ROOT = Path(__file__).resolve().parents[1]
VENDOR = STATIC / "vendor"
MANIFEST = json.loads((VENDOR / "manifest.json").read_text())
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def refresh_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "refresh_graphiql", ROOT / "scripts" / "refresh_graphiql.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_files_are_the_ones_the_manifest_records():
    files = MANIFEST["files"]
    assert sorted(p.name for p in VENDOR.iterdir()) == sorted([*files, "manifest.json"])
    for name, entry in files.items():
        data = (VENDOR / name).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"], entry["bytes"]), name


def test_the_manifest_records_the_pinned_packages_and_their_files():
    script = refresh_script()
    assert {name: p["version"] for name, p in MANIFEST["packages"].items()} == script.PINNED
    assert all(p["integrity"].startswith("sha512-") for p in MANIFEST["packages"].values())
    for name, (package, member) in script.FILES.items():
        assert (MANIFEST["files"][name]["package"], MANIFEST["files"][name]["from"]) == (package, member)
    assert MANIFEST["packages"]["graphiql"]["version"].startswith("4.")  # why: the script's docstring


def test_the_readme_first_example_is_the_query_graphiql_opens_with():
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```graphql\n(.*?)```", readme, re.S)
    assert first and first.group(1) == EXAMPLE_QUERY


class Page(HTMLParser):
    """What the page's HTML holds: external scripts and styles, and anything inline."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.inline: list[str] = []  # inline scripts, <style>, style= and on*= attributes
        self.config: dict[str, Any] | None = None
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.inline += [f"{tag} {name}" for name in attributes if name == "style" or name.startswith("on")]
        if tag == "script":
            self._in_script = True
            if attributes.get("src"):
                self.scripts.append(attributes["src"] or "")
            else:
                self.inline.append("script without src")
        elif tag == "style":
            self.inline.append("style element")
        elif tag == "link" and attributes.get("rel") == "stylesheet":
            self.styles.append(attributes["href"] or "")
        if attributes.get("id") == "graphiql":
            self.config = json.loads(attributes["data-config"] or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script body")


def test_the_page_loads_only_the_shipped_files_and_no_inline_code(gateway: Gateway):
    response = gateway.client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert (policy["default-src"], policy["script-src"], policy["style-src"]) == (
        "'none'",
        "'self'",
        "'self'",
    )
    page = Page(response.text)
    assert page.inline == []
    vendored = [f"graphiql/vendor/{name}" for name in MANIFEST["files"]]
    assert page.scripts == [n for n in vendored if n.endswith(".js")] + ["graphiql/graphiql.js"]
    assert page.styles == [n for n in vendored if n.endswith(".css")] + ["graphiql/graphiql.css"]
    # each is served (relative to /graphql), byte for byte, with its type
    for href in page.scripts + page.styles:
        served = gateway.client.get(f"/{href}")
        assert served.status_code == 200, href
        assert served.content == (STATIC / href.removeprefix("graphiql/")).read_bytes(), href
        kind = "text/javascript" if href.endswith(".js") else "text/css"
        assert served.headers["content-type"].startswith(kind), href
    # `serve` opens GraphiQL with the example query and the explorer, and no headers unless configured
    assert page.config == {"query": EXAMPLE_QUERY, "headers": ""}


@pytest.fixture(scope="module")
def configured(upstream: Upstream, logs_dir: Path) -> Iterator[dict[str, Gateway]]:
    specs = {
        "graphiql-off": ([], {"GRAPHIQL": "false"}),
        "graphiql-headers": (
            [],
            {"GRAPHIQL_HEADERS": '{"Authorization": "Bearer shown-to-all", "X-Team": "7"}'},
        ),
    }
    gateways = start_gateways_with(upstream.url, logs_dir, specs)
    yield gateways
    stop_gateways(gateways)


def test_graphiql_headers_are_what_the_page_starts_with(configured: dict[str, Gateway]):
    page = Page(configured["graphiql-headers"].client.get("/graphql", headers=BROWSER).text)
    assert page.config is not None
    assert json.loads(page.config["headers"]) == {"Authorization": "Bearer shown-to-all", "X-Team": "7"}


def test_with_graphiql_off_neither_the_page_nor_its_files_are_served(configured: dict[str, Gateway]):
    client = configured["graphiql-off"].client
    response = client.get("/graphql", headers=BROWSER)
    # a GET without a query, as any other client's: the endpoint's JSON refusal, not a page
    assert response.status_code == 400 and "text/html" not in response.headers["content-type"]
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert client.get("/graphiql/graphiql.js").status_code == 404
    assert client.get("/graphiql/vendor/manifest.json").status_code == 404


def test_the_operations_guide_shows_the_policy_the_page_carries():
    guide = (ROOT / "docs" / "operations.md").read_text()
    shown = re.search(r"```text\nContent-Security-Policy: (.*?)\n```", guide, re.S)
    assert shown and " ".join(shown.group(1).split()) == CONTENT_SECURITY_POLICY
