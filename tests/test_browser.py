"""GraphiQL in a real browser: Debian's chromium, driven headless by playwright (`executable_path`: nothing is
downloaded), on `casegraph demo` run as a process, in a 1400x900 window. Every request that is not to the
gateway on loopback is aborted, so the page must work with no internet: it renders, its first view is clean
(every line of the example query visible in the editor, the keyboard left alone, no console error), it runs
the README's first example query and shows its data, the docs pane shows `Case` with its description, the
explorer opens with one click at its top, listing `cases` and the example's list argument, and a query with
`@defer` shows the v1 cases before its deferred part (the v2 data) arrives.

A failed test leaves a screenshot and the page's console in tests/artifacts/ (ignored by git).
`make test` installs chromium when it is missing (apt-get, as root).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.http.graphiql import EXAMPLE_QUERY
from tests.support import DEMO_TOKEN, Process, failed, free_port, start, stop, system_tool

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Without these chromium stalls on the closed network (fetching components, sync, field trials); playwright
# starts it with a fresh profile directory of its own each time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WAIT_MS = 15_000  # the most any step may take (a bound, not a measurement)


@pytest.fixture(scope="module")
def upstream_port() -> int:
    """The port of the demo's upstream (its fault injection and request log are there)."""
    return free_port()


@pytest.fixture(scope="module")
def demo(logs_dir: Path, upstream_port: int) -> Iterator[Process]:
    port = free_port()
    args = ["demo", "--port", str(port), "--upstream-port", str(upstream_port)]
    process = start(args, port, logs_dir / "demo.log", "/healthz")
    yield process
    stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = system_tool("chromium", "`make test` installs it (apt-get install chromium, as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    """GraphiQL open in a fresh browser context, with what the page did besides."""

    page: Any
    blocked: list[str] = field(default_factory=list)  # requests aborted: not to loopback
    errors: list[str] = field(default_factory=list)  # uncaught exceptions
    console: list[str] = field(default_factory=list)  # console messages, every type

    def editor(self, selector: str) -> str:
        """The text of the CodeMirror editor under `selector`."""
        return self.page.eval_on_selector(f"{selector} .CodeMirror", "e => e.CodeMirror.getValue()")

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]


@pytest.fixture
def graphiql(browser: Any, demo: Process, request: pytest.FixtureRequest) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    visit = Visit(page)

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            visit.blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    page.on("console", lambda message: visit.console.append(f"{message.type}: {message.text}"))
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(f"{demo.url}/graphql")
        page.wait_for_selector(".graphiql-container .graphiql-query-editor .CodeMirror")
        yield visit
    finally:
        if failed(request):
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
            lines = visit.console + [f"pageerror: {e}" for e in visit.errors] + visit.blocked
            (ARTIFACTS / f"{request.node.name}.console.txt").write_text("\n".join(lines) + "\n")
        context.close()


def test_graphiql_renders_offline_with_the_example_query_and_the_demo_token(graphiql: Visit):
    assert graphiql.editor(".graphiql-query-editor") == EXAMPLE_QUERY
    headers = graphiql.page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden)")
    assert json.loads(headers.evaluate("e => e.querySelector('.CodeMirror').CodeMirror.getValue()")) == {
        "Authorization": f"Bearer {DEMO_TOKEN}"
    }
    # everything came from the gateway, and the Content-Security-Policy refused nothing
    assert graphiql.blocked == []
    assert graphiql.errors == []
    assert graphiql.csp_violations() == []


def test_the_example_query_runs_and_its_data_is_shown(graphiql: Visit, demo: Process):
    graphiql.page.click(".graphiql-execute-button")
    graphiql.page.wait_for_function(
        "() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue().includes('caseId')"
    )
    shown = json.loads(graphiql.editor(".result-window"))
    direct = httpx.post(f"{demo.url}/graphql", json={"query": EXAMPLE_QUERY}, timeout=30).json()
    assert "errors" not in shown
    assert shown["data"] == direct["data"]
    assert len(shown["data"]["cases"]["items"]) == 10
    assert graphiql.blocked == []


def test_the_docs_pane_shows_case_with_its_description(graphiql: Visit, demo: Process):
    answer = httpx.post(
        f"{demo.url}/graphql", json={"query": '{ __type(name: "Case") { description } }'}, timeout=30
    ).json()
    description = answer["data"]["__type"]["description"]
    page = graphiql.page
    page.click('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]')
    from playwright.sync_api import expect

    search = page.locator(".graphiql-doc-explorer-search input")
    search.fill("Case")
    # the results are filtered after a debounce: wait until the list holds just the types named for the
    # search, so the click cannot land on an entry the list is still moving (CaseStatus, CaseConnection...)
    option = page.get_by_role("option", name="Case", exact=True)
    expect(option).to_be_visible()
    page.wait_for_timeout(300)
    option.click()
    expect(page.locator(".graphiql-doc-explorer-title")).to_have_text("Case")
    assert page.inner_text(".graphiql-doc-explorer-content .graphiql-markdown-description") == description
    assert graphiql.blocked == []


def console_errors(visit: Visit) -> list[str]:
    return [line for line in visit.console if line.startswith("error:")] + visit.errors


def focused(page: Any) -> str:
    """Where the keyboard is: "nothing" (the page's body), "query editor", or the element's description."""
    return str(
        page.evaluate(
            """() => {
                const e = document.activeElement;
                if (!e || e === document.body) return "nothing";
                if (e.closest(".graphiql-query-editor")) return "query editor";
                return `${e.tagName} ${e.className} ${e.getAttribute("aria-label") || ""}`.trim();
            }"""
        )
    )


# Each line of the query editor against what is visible of it: left of GraphiQL's toolbar (drawn over the
# editor's right edge) and inside the editor's box.
LINES_SHOWN = """() => {
    const editor = document.querySelector(".graphiql-query-editor");
    const cm = editor.querySelector(".CodeMirror").CodeMirror;
    const box = editor.getBoundingClientRect();
    const right = Math.min(box.right, editor.querySelector(".graphiql-toolbar").getBoundingClientRect().left);
    const lines = [];
    for (let line = 0; line < cm.lineCount(); line++) {
        const text = cm.getLine(line);
        const start = cm.charCoords({line, ch: 0}, "window");
        const end = cm.charCoords({line, ch: text.length}, "window");
        const shown = start.left >= box.left && end.right <= right && start.top >= box.top && end.bottom <= box.bottom;
        lines.push({text, shown});
    }
    return lines;
}"""


def test_the_first_view_shows_the_whole_example_with_no_error_and_the_keyboard_left_alone(graphiql: Visit):
    page = graphiql.page
    page.wait_for_load_state("networkidle")  # the schema's introspection has come back and been drawn
    lines = page.evaluate(LINES_SHOWN)
    assert [line["text"] for line in lines] == EXAMPLE_QUERY.split("\n")
    longest = max(lines, key=lambda line: len(line["text"]))
    assert longest["shown"], longest["text"]
    assert [line["text"] for line in lines if not line["shown"]] == []
    assert focused(page) in {"nothing", "query editor"}
    assert console_errors(graphiql) == []
    # the explorer is one click away, not open
    assert page.locator('.graphiql-sidebar button[aria-label="Show GraphiQL Explorer"]').count() == 1
    assert page.locator(".graphiql-plugin .docExplorerWrap").count() == 0


def test_the_explorer_opens_with_one_click_at_its_top_listing_cases_and_the_example(graphiql: Visit):
    from playwright.sync_api import expect

    page = graphiql.page
    page.wait_for_load_state("networkidle")
    page.click('.graphiql-sidebar button[aria-label="Show GraphiQL Explorer"]')
    explorer = page.locator(".graphiql-plugin .docExplorerWrap")
    expect(explorer.get_by_text("cases", exact=True).first).to_be_visible()
    expect(explorer.get_by_text("legacyCases", exact=True).first).to_be_visible()
    expect(page.locator('.graphiql-sidebar button[aria-label="Hide GraphiQL Explorer"]')).to_have_count(1)
    # the example's list argument is shown (the patched explorer, scripts/refresh_graphiql.py) ...
    expect(explorer.get_by_text("[HIGH, CRITICAL]", exact=True)).to_be_visible()
    # ... the pane starts at its top, and the explorer's argument inputs did not take the keyboard
    expect(page.locator(".graphiql-plugin").get_by_text("Explorer", exact=True)).to_be_in_viewport()
    assert focused(page) == "BUTTON graphiql-un-styled active Hide GraphiQL Explorer"
    page.keyboard.type("7")
    assert graphiql.editor(".graphiql-query-editor") == EXAMPLE_QUERY
    assert console_errors(graphiql) == []


DEFERRED = (
    "query DeferredCases { legacyCases(perPage: 20) "
    "{ items { legacyId caseNumber ... @defer { case { caseId name status } } } } }"
)


def test_a_deferred_part_is_shown_when_it_arrives(graphiql: Visit, upstream_port: int):
    upstream = httpx.Client(base_url=f"http://127.0.0.1:{upstream_port}", timeout=10)
    page = graphiql.page
    page.eval_on_selector(".graphiql-query-editor .CodeMirror", f"e => e.CodeMirror.setValue({DEFERRED!r})")
    # GraphiQL sends the operation name it has parsed from the editor: wait until it names this one (its tab)
    page.wait_for_function(
        "() => document.querySelector('.graphiql-tab').textContent.includes('DeferredCases')"
    )
    upstream.delete("/_demo/requests").raise_for_status()
    upstream.post("/_demo/faults", json={"paths": ["/api/v2/cases"], "latency_ms": 1500}).raise_for_status()
    try:
        page.click(".graphiql-execute-button")
        page.wait_for_function(
            "() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue().includes('caseNumber')"
        )
        shown = graphiql.editor(".result-window")
        # the 20 v1 cases are on screen while the upstream still holds the v2 call
        v2 = [r for r in upstream.get("/_demo/requests").json()["requests"] if r["path"] == "/api/v2/cases"]
        assert v2 == []
        first = json.loads(shown)
        items = first["data"]["legacyCases"]["items"]
        # (a case without a v2 link has its null at once: nothing to wait for)
        assert len(items) == 20 and all(item.get("case") is None for item in items)
        page.wait_for_function(
            "() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue().includes('caseId')"
        )
        page.wait_for_function(
            "() => !document.querySelector('.result-window .CodeMirror').CodeMirror.getValue().includes('hasNext\": true')"
        )
        whole = json.loads(graphiql.editor(".result-window"))
        cases = [item.get("case") for item in whole["data"]["legacyCases"]["items"]]
        assert sum(case is not None for case in cases) >= 15
        assert [i["legacyId"] for i in whole["data"]["legacyCases"]["items"]] == [
            i["legacyId"] for i in items
        ]
        assert graphiql.errors == [] and graphiql.blocked == []
    finally:
        upstream.delete("/_demo/faults")
        upstream.close()
