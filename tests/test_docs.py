"""The README is the front door (at most 250 lines; the long sections live in docs/), its links and the docs'
lead somewhere real, and what it says about the demo and the test command matches the code."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from http import HTTPMethod
from pathlib import Path

from graphql import GraphQLEnumType

from gateway.demo import DEMO_TOKEN
from gateway.demo.data import DEMO_NOW, generate
from gateway.ops.config import Settings
from gateway.planning.executable import schema
from gateway.upstream.links import v2_id_of

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# where the README's long sections went
MOVED = {
    "configuration.md",
    "operations.md",
    "caching.md",
    "deployment.md",
    "performance.md",
    "upstreams.md",
    "limits.md",
    "demo.md",
    "development.md",
}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # `# comments` in code are no headings
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, re.M)}


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= 250
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", README.read_text()))
    assert linked >= MOVED  # the sections that left it are a link away


def test_every_relative_link_leads_to_a_file_and_heading_that_exist():
    broken = []
    for page in [README, *DOCS]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists() or (anchor and anchor not in anchors(path)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_the_readme_says_what_the_test_command_installs_and_that_it_needs_root():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe
    packages = re.findall(r"apt-get install -y (?:--no-install-recommends )?([\w-]+)", recipe.group(1))
    assert packages == ["redis-server", "docker-compose", "chromium", "haproxy", "nodejs"]
    quick_start = README.read_text().split("## Quick start")[1].split("\n## ")[0]
    assert "needs root" in quick_start and "apt-get" in quick_start
    assert all(f"`{package}`" in quick_start for package in packages)


def test_the_readme_names_the_demo_token_and_the_dangling_links_the_demo_data_holds():
    readme = README.read_text()
    assert f"Bearer {DEMO_TOKEN}" in readme
    data = generate(7)  # the demo's default seed
    label = Settings.model_fields["v2_link_label"].default
    targets = {legacy_id: v2_id_of(case, label) for legacy_id, case in data.legacy.items()}
    dangling_v1 = [legacy_id for legacy_id, target in targets.items() if target and target not in data.cases]
    assert dangling_v1 == [1006, 1061, 1141, 1211, 1291, 1301]
    demo = " ".join(readme.split("## The demo")[1].split("\n## ")[0].split())  # its words, however wrapped
    assert "v1 cases 1006, 1061, 1141, 1211, 1291 and 1301 point at v2 cases 5001-5006" in demo
    missing_v1 = [
        n for n, c in data.cases.items() if (c.case["metadata"] or {}).get("trackops_case_id") == "99999"
    ]
    assert missing_v1 == [4, 8] and "v2 cases 4 and 8 point at a missing v1 case" in demo
    deleted = [
        n
        for n, c in data.cases.items()
        if any(r["case_id"] not in data.cases for r in c.case["linked_cases"])
    ]
    assert deleted == list(range(9, 301, 9)) and "every 9th v2 case (9, 18, ... 297)" in demo


def section(heading: str) -> str:
    """The words of the README's section under `heading` (however wrapped)."""
    return " ".join(README.read_text().split(f"\n{heading}\n")[1].split("\n## ")[0].split())


def test_the_readme_says_the_demo_clock_next_to_the_first_example():
    examples = section("## Example queries")
    first_example = examples.index("```graphql")
    clock = examples.index(f'its "now" is {DEMO_NOW:%Y-%m-%d %H:%M} UTC')
    assert clock < first_example  # said before the reader runs it
    since = (DEMO_NOW - timedelta(days=30)).date().isoformat()
    assert f'`relativeDate: "30 days"` means since {since}' in examples


def test_the_readme_says_how_to_run_against_your_own_apis():
    own = section("## Against your own APIs")
    (command,) = re.findall(r"```sh (.*?) ```", own)
    variables = dict(re.findall(r"([A-Z][A-Z0-9_]*)=(\S+)", command))
    assert sorted(variables) == ["AUTH_MODE", "V1_URL", "V2_URL"]
    Settings(**{name.lower(): value for name, value in variables.items()})  # values the gateway accepts
    assert command.endswith("make serve")
    assert re.search(r"^serve: .*## ", (ROOT / "Makefile").read_text(), re.M)
    assert "[docs/configuration.md](docs/configuration.md)" in own


# Upper-case string constants in the gateway's code that are not error codes: environment variables read
# outside Settings, a TypeVar's name, the UTC designator. (HTTP methods, the schema's type and enum value
# names and the settings' variables are recognised below.)
NOT_CODES = {"UPSTREAM_PORT", "PROMETHEUS_MULTIPROC_DIR", "T", "Z"}


def codes_in_the_code() -> set[str]:
    """Every string constant of the gateway (not its demo upstream) that looks like an error code and is
    nothing else: what `extensions.code` can hold, however the module builds the error."""
    graphql_schema = schema._schema
    names = set(graphql_schema.type_map) | {
        value
        for kind in graphql_schema.type_map.values()
        if isinstance(kind, GraphQLEnumType)
        for value in kind.values
    }
    names |= {method.value for method in HTTPMethod} | {field.upper() for field in Settings.model_fields}
    found = set()
    for path in (ROOT / "gateway").rglob("*.py"):
        if "demo" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and re.fullmatch(r"[A-Z]+(?:_[A-Z]+)*", node.value):
                found.add(node.value)
    return {code for code in found - names - NOT_CODES if not code.startswith("OTEL_")}


def test_the_readme_error_table_holds_every_code_the_gateway_can_answer_and_no_other():
    errors = README.read_text().split("\n### Errors\n")[1].split("\n## ")[0]
    table = {
        code for row in re.findall(r"^\| (.*?) \|", errors, re.M) for code in re.findall(r"`([A-Z_]+)`", row)
    }
    emitted = codes_in_the_code()
    assert {
        "OPERATION_RESOLUTION_FAILURE",
        "NOT_FOUND",
        "OVERLOADED",
        "BAD_REQUEST",
    } <= emitted  # the scan works
    assert sorted(emitted - table) == [], "codes the gateway answers that the README's error table lacks"
    assert sorted(table - emitted) == [], "codes in the README's error table the gateway never answers"
