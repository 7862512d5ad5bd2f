"""Trusted documents and HTTP revalidation proven with real clients against a live gateway in
TRUSTED_DOCUMENTS_MODE=enforce, whose manifests are written by the frontend toolchains themselves:

- `@apollo/generate-persisted-query-manifest` builds Apollo's manifest from tests/node/trusted/operations.mjs;
  Apollo Client 4 with `@apollo/persisted-query-lists` runs every operation by id only (by POST, then by GET),
  and a query the same client sends as text is refused with DOCUMENT_NOT_TRUSTED;
- GraphQL Code Generator's client preset (`persistedDocuments`) writes its id -> document map from
  tests/node/trusted/codegen_operations.graphql; node's `fetch` GETs each by `documentId`, then again with the
  ETag, and gets 304;
- in Debian's chromium a page fetches the same GET twice: the browser revalidates the second with
  `If-None-Match` and the gateway answers 304 (its log line and `casegraph_not_modified_total` say so).

`make test` installs the node packages (`npm ci` in tests/node) and chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.http.trusted_documents import sha256_hex
from tests.support import DEMO_TOKEN, Gateway, Metrics, Upstream, start_gateway, stop, wait_for
from tests.test_browser import browser  # noqa: F401 - the fixture: chromium, headless
from tests.test_graphql_http import cases_of

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
BIN = NODE_DIR / "node_modules" / ".bin"
pytestmark = pytest.mark.skipif(
    NODE is None
    or not (BIN / "generate-persisted-query-manifest").exists()
    or not (BIN / "graphql-codegen").exists(),
    reason="node or tests/node/node_modules is missing (`make test` runs `npm ci` in tests/node)",
)
SCHEMA = Path(__file__).resolve().parent.parent / "schema.graphql"


def node(*args: str, timeout: float = 180) -> str:
    run = subprocess.run(
        [NODE, *args],  # type: ignore[list-item]
        cwd=NODE_DIR,
        env={**os.environ, "CASEGRAPH_TOKEN": DEMO_TOKEN},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifests the two toolchains write, in one directory the gateway loads."""
    work = tmp_path_factory.mktemp("toolchains")
    out = work / "manifests"
    out.mkdir()
    config = work / "persisted-query-manifest.config.json"
    operations = NODE_DIR / "trusted" / "operations.mjs"
    config.write_text(json.dumps({"documents": [str(operations)], "output": str(out / "apollo.json")}))
    node(str(BIN / "generate-persisted-query-manifest"), "--config", str(config))
    generated = work / "codegen"
    codegen = work / "codegen.json"
    preset = {"preset": "client", "presetConfig": {"persistedDocuments": True}}
    codegen.write_text(
        json.dumps(
            {
                "schema": str(SCHEMA),
                "documents": [str(NODE_DIR / "trusted" / "codegen_operations.graphql")],
                "generates": {f"{generated}/": preset},
                "silent": True,
            }
        )
    )
    node(str(BIN / "graphql-codegen"), "--config", str(codegen))
    shutil.copy(generated / "persisted-documents.json", out / "codegen.json")
    return out


@pytest.fixture(scope="module")
def gateway(upstream: Upstream, logs_dir: Path, manifests: Path) -> Iterator[Gateway]:
    env = {"CACHE_TTL": "60", "TRUSTED_DOCUMENTS": str(manifests), "TRUSTED_DOCUMENTS_MODE": "enforce"}
    gw = start_gateway(upstream.url, logs_dir / "trusted-clients.log", **env)
    yield gw
    stop(gw.process)


def test_the_manifests_are_the_toolchains_own(manifests):
    apollo = json.loads((manifests / "apollo.json").read_text())
    assert apollo["format"] == "apollo-persisted-query-manifest" and apollo["version"] == 1
    assert sorted(op["name"] for op in apollo["operations"]) == [
        "TrustedCase",
        "TrustedCases",
        "TrustedLegacy",
    ]
    assert all(op["id"] == sha256_hex(op["body"]) for op in apollo["operations"])
    codegen = json.loads((manifests / "codegen.json").read_text())
    assert len(codegen) == 2 and all(key == f"sha256:{sha256_hex(body)}" for key, body in codegen.items())


@pytest.mark.parametrize("method", ["post", "get"])
def test_apollo_client_with_persisted_query_lists_runs_every_operation_by_id_only(
    gateway, upstream, calls, manifests, method
):
    expected = cases_of(upstream, 4)["items"]
    calls.reset()
    run = json.loads(
        node("trusted/apollo_client.mjs", f"{gateway.url}/graphql", str(manifests / "apollo.json"), method)
    )
    answers, sent = run["answers"], run["sent"]
    cases = answers["cases"]["data"]["cases"]["items"]
    assert [(c["caseId"], c["name"]) for c in cases] == [(c["caseId"], c["name"]) for c in expected]
    assert answers["oneCase"]["data"]["case"]["caseId"] == 3
    assert len(answers["legacy"]["data"]["legacyCases"]["items"]) == 3
    assert all(answers[name]["error"] is None for name in ("cases", "oneCase", "legacy"))
    # by id only: no query text on the wire, the manifest's id in the APQ form
    ids = {op["name"]: op["id"] for op in json.loads((manifests / "apollo.json").read_text())["operations"]}
    by_id = sent[:3]
    assert [r["method"] for r in by_id] == [method.upper()] * 3
    for request, name in zip(by_id, ["TrustedCases", "TrustedCase", "TrustedLegacy"], strict=True):
        carried = request["body"] or request["url"]
        assert "query" not in (json.loads(request["body"]) if request["body"] else {})
        assert "query=" not in request["url"] and ids[name] in carried
    # the same client's query as text: refused with the one code, nothing sent upstream for it
    [raw] = sent[3:]
    assert "query Unlisted" in json.loads(raw["body"])["query"]
    assert answers["unlisted"]["data"] is None
    assert [e["extensions"]["code"] for e in answers["unlisted"]["errors"]] == ["DOCUMENT_NOT_TRUSTED"]
    assert all(r["query"] != "page=1&per_page=1" for r in calls.requests())


def test_codegen_client_preset_documents_fetched_by_id_over_get_then_revalidated_with_304(
    gateway, calls, manifests
):
    run = json.loads(
        node("trusted/codegen_fetch.mjs", f"{gateway.url}/graphql", str(manifests / "codegen.json"))
    )
    assert sorted(run) == ["CodegenCases", "CodegenLegacy"]
    for result in run.values():
        first, again = result["first"], result["again"]
        assert result["documentId"].startswith("sha256:")
        assert first["status"] == 200 and "errors" not in first["body"], first
        assert first["etag"] and first["cacheControl"] == "private, no-cache"
        assert again["status"] == 304 and again["body"] is None, again
        assert again["etag"] == first["etag"] and again["cacheControl"] == first["cacheControl"]
    assert len(run["CodegenCases"]["first"]["body"]["data"]["cases"]["items"]) == 3
    assert run["CodegenLegacy"]["first"]["body"]["data"]["legacyCase"]["legacyId"] == 1002


def test_chromium_revalidates_a_repeated_get_and_the_gateway_answers_304(gateway, browser, manifests):  # noqa: F811
    document_id = next(iter(json.loads((manifests / "codegen.json").read_text())))
    context = browser.new_context()
    page = context.new_page()
    before = Metrics.of(gateway).get("casegraph_not_modified_total", operation="CodegenCases")
    try:
        page.goto(f"{gateway.url}/healthz")  # the gateway's origin: the fetches are same-origin
        script = """async ([url, token]) => {
            const answers = [];
            for (let n = 0; n < 2; n++) {
                const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
                answers.push({ status: response.status, etag: response.headers.get("etag"), body: await response.json() });
            }
            return answers;
        }"""
        url = f"{gateway.url}/graphql?documentId={document_id}&variables=" + '{"n":2}'
        first, second = page.evaluate(script, [url, DEMO_TOKEN])
    finally:
        context.close()
    # the page sees the answer twice; the second came from the browser's cache, revalidated by the gateway
    assert first["status"] == second["status"] == 200
    assert second["body"]["data"] == first["body"]["data"] and second["etag"] == first["etag"]
    assert len(first["body"]["data"]["cases"]["items"]) == 2
    wait_for(
        lambda: (
            Metrics.of(gateway).get("casegraph_not_modified_total", operation="CodegenCases") == before + 1
        ),
        "the gateway counted the browser's revalidation",
    )
    lines = [
        line
        for line in gateway.process.log().splitlines()
        if "GET /graphql" in line and "CodegenCases" in line
    ]
    assert [line.split("GET /graphql ")[1].split()[0] for line in lines[-2:]] == ["200", "304"]
