"""Trusted documents (gateway/http/trusted_documents.py) and HTTP caching of GET answers, over real HTTP against
gateway processes on the demo upstream: manifests loaded at start (a bad one stops `casegraph serve` with exit 2
naming it), requests by `documentId` and by APQ hash, the three modes, and ETag / 304 revalidation."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.http.services import Services
from gateway.http.trusted_documents import ManifestError, load
from gateway.ops.config import Settings
from gateway.planning.context import RequestContext
from gateway.planning.executable import passes_answers, schema
from gateway.upstream.credentials import Caller, credential_for
from tests.support import (
    AUTH,
    DEMO_TOKEN,
    Gateway,
    Metrics,
    Upstream,
    gateway_env,
    start_gateways_with,
    stop_gateways,
)
from tests.test_graphql_http import cases_of
from tests.test_limits import REFUSED
from tests.test_observability import summary_of
from tests.test_validation import BAD

GRJ = "application/graphql-response+json"
JSON = "application/json"
CASES = "query Cases($n: Int!) { cases(perPage: $n) { items { caseId name } pageInfo { count } } }"
ONE_CASE = "query OneCase($id: Int!) { case(id: $id) { caseId name } }"
LEGACY = "query Legacy { legacyCases(perPage: 2) { items { legacyId } } }"
MISSING = "query Missing { case(id: 999999) { caseId } }"
TYPENAME = "{ __typename }"
OPAQUE_ID = "legacy-list-v1"  # an id that is no SHA-256: taken as it is


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apollo_manifest(*operations: tuple[str, str]) -> dict[str, Any]:
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256(body), "name": name, "type": "query", "body": body} for name, body in operations
        ],
    }


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of two manifests: Apollo's format and an id -> document map."""
    path = tmp_path_factory.mktemp("manifests")
    manifest = apollo_manifest(("Cases", CASES), ("OneCase", ONE_CASE), ("Missing", MISSING))
    (path / "apollo.json").write_text(json.dumps(manifest))
    (path / "map.json").write_text(json.dumps({OPAQUE_ID: LEGACY, f"sha256:{sha256(TYPENAME)}": TYPENAME}))
    return path


@pytest.fixture(scope="module")
def gateways(upstream: Upstream, logs_dir: Path, manifests: Path) -> Iterator[dict[str, Gateway]]:
    cached = {"CACHE_TTL": "60", "TRUSTED_DOCUMENTS": str(manifests)}
    started = start_gateways_with(
        upstream.url,
        logs_dir,
        {
            "trusted-enforce": ([], {**cached, "TRUSTED_DOCUMENTS_MODE": "enforce"}),
            "trusted-closed": ([], {**cached, "TRUSTED_DOCUMENTS_MODE": "enforce", "INTROSPECTION": "false"}),
            "trusted-log": ([], {**cached, "TRUSTED_DOCUMENTS_MODE": "log", "LOG_FORMAT": "json"}),
            "trusted-token": (
                [],
                {**cached, "AUTH_MODE": "token", "UPSTREAM_TOKEN": DEMO_TOKEN, "RESPONSE_CACHE": "false"},
            ),
        },
    )
    yield {name.removeprefix("trusted-"): gw for name, gw in started.items()}
    stop_gateways(started.values())


def get(gw: Gateway, params: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    encoded = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    return gw.client.get("/graphql", params=encoded, headers={**AUTH, "Accept": GRJ, **(headers or {})})


def post(
    gw: Gateway, body: dict[str, Any], accept: str = GRJ, headers: dict[str, str] | None = None
) -> httpx.Response:
    return gw.client.post("/graphql", json=body, headers={**AUTH, "Accept": accept, **(headers or {})})


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors", [])]


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def log_lines(gw: Gateway, pattern: str) -> list[str]:
    return [line for line in gw.process.log().splitlines() if re.search(pattern, line)]


# --- loading -----------------------------------------------------------------------------------------------


def serve_with(tmp_path: Path, content: Any, name: str = "manifest.json") -> subprocess.CompletedProcess[str]:
    """`casegraph serve` with this manifest: it must stop before serving."""
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    env = {**gateway_env("http://127.0.0.1:9"), "TRUSTED_DOCUMENTS": str(path), "PORT": "9"}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (apollo_manifest(("Bad", "query Bad { noSuchField }")), ["(Bad) does not validate", "noSuchField"]),
        (apollo_manifest(("Broken", "query Broken { cases(")), ["(Broken) does not parse"]),
        (
            {
                **apollo_manifest(("Cases", CASES)),
                "operations": [{"id": sha256("x"), "name": "Cases", "body": CASES}],
            },
            [sha256("x"), "is not the SHA-256 of the document"],
        ),
        ({"sha256:" + "0" * 64: TYPENAME}, ["sha256:" + "0" * 64, "is not the SHA-256"]),
        ({"other": "{ cases { nope } }"}, ["'other'", "does not validate"]),
        (
            {"format": "apollo-persisted-query-manifest", "version": 2, "operations": []},
            ["unknown manifest format"],
        ),
        ("[1, 2]", ["is not a JSON object"]),
    ],
    ids=["invalid", "syntax", "apollo-id", "sha256-id", "map-invalid", "version", "not-object"],
)
def test_a_manifest_that_cannot_be_trusted_is_refused_naming_it(tmp_path, content, words):
    path = tmp_path / "manifest.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ManifestError) as refused:
        load(str(path), "enforce", schema._schema, True)
    message = str(refused.value)
    assert message.startswith(f"TRUSTED_DOCUMENTS: {path}")
    for word in words:
        assert word in message, message


def test_serve_exits_2_naming_the_document_that_cannot_be_trusted(tmp_path):
    run = serve_with(tmp_path, apollo_manifest(("Bad", "query Bad { noSuchField }")))
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"casegraph: TRUSTED_DOCUMENTS: {tmp_path / 'manifest.json'}: document ")
    assert "(Bad) does not validate: Cannot query field 'noSuchField'" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_directory_of_manifests_is_loaded_whole(manifests):
    trusted = load(str(manifests), "log", schema._schema, True)
    assert len(trusted) == 5
    assert trusted.find(OPAQUE_ID).name == "Legacy"  # the operation's name where the map gives none
    assert trusted.find(f"sha256:{sha256(LEGACY)}") is trusted.find(OPAQUE_ID)
    assert trusted.find(sha256(CASES)).name == "Cases"
    assert trusted.find(f"SHA256:{sha256(CASES)}") is None
    document = trusted.find(sha256(CASES)).document
    assert document.plans  # planned at start


def test_enforce_without_documents_is_a_configuration_error(tmp_path):
    env = {**gateway_env("http://127.0.0.1:9"), "TRUSTED_DOCUMENTS_MODE": "enforce", "PORT": "9"}
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 2 and "TRUSTED_DOCUMENTS is required" in run.stderr


def test_trusted_documents_are_reported(gateways, manifests):
    report = gateways["enforce"].client.get("/healthz").json()["trustedDocuments"]
    assert report == {"mode": "enforce", "documents": 5, "source": str(manifests)}


# --- requests by id ------------------------------------------------------------------------------------------


def test_a_trusted_document_runs_by_document_id_post_and_get_and_by_apq_hash(gateways, calls, upstream):
    gw = gateways["enforce"]
    expected = cases_of(upstream, 3)
    calls.reset()
    variables = {"n": 3}
    by_sha = post(gw, {"documentId": f"sha256:{sha256(CASES)}", "variables": variables})
    by_bare = post(gw, {"documentId": sha256(CASES), "variables": variables})
    by_get = get(gw, {"documentId": f"sha256:{sha256(CASES)}", "variables": variables})
    by_hash = post(gw, {"extensions": persisted(sha256(CASES)), "variables": variables})
    for response in (by_sha, by_bare, by_get, by_hash):
        assert response.status_code == 200, response.text
        assert response.json()["data"]["cases"] == expected
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases"]  # then the response cache
    opaque = post(gw, {"documentId": OPAQUE_ID})
    assert opaque.status_code == 200 and len(opaque.json()["data"]["legacyCases"]["items"]) == 2


def test_the_summary_line_and_metrics_name_the_document_and_whether_it_was_trusted(gateways, calls):
    gw = gateways["log"]
    before = Metrics.of(gw)
    assert post(gw, {"documentId": OPAQUE_ID}, headers={"X-Request-ID": "trusted-1"}).status_code == 200
    assert post(gw, {"query": LEGACY + " "}, headers={"X-Request-ID": "untrusted-1"}).status_code == 200
    trusted, untrusted = (summary_of(gw, rid) for rid in ("trusted-1", "untrusted-1"))
    assert (trusted["document_id"], trusted["document_name"], trusted["trusted"]) == (
        OPAQUE_ID,
        "Legacy",
        True,
    )
    assert (untrusted["document_id"], untrusted["document_name"], untrusted["trusted"]) == (None, None, False)
    assert trusted["operation"] == untrusted["operation"] == "Legacy"
    after = Metrics.of(gw)
    labels = {"document": OPAQUE_ID, "operation": "Legacy", "trusted": "true"}
    assert (
        after.get("casegraph_documents_total", **labels)
        == before.get("casegraph_documents_total", **labels) + 1
    )


def test_an_unknown_document_id_is_not_found_unless_enforced(gateways, calls):
    unknown = {"documentId": "sha256:" + "a" * 64}
    assert (post(gateways["log"], unknown).status_code, codes(post(gateways["log"], unknown))) == (
        404,
        ["PERSISTED_DOCUMENT_NOT_FOUND"],
    )
    assert post(gateways["log"], unknown, accept=JSON).status_code == 200  # a well-formed request under JSON
    for accept in (GRJ, JSON):
        refused = post(gateways["enforce"], unknown, accept=accept)
        assert (refused.status_code, codes(refused)) == (400, ["DOCUMENT_NOT_TRUSTED"])
    assert calls.requests() == []


def test_document_id_beside_a_query_is_a_bad_request(gateways, calls):
    both = post(gateways["log"], {"documentId": OPAQUE_ID, "query": LEGACY})
    assert (both.status_code, codes(both)) == (400, ["BAD_REQUEST"])
    long = post(gateways["log"], {"documentId": "x" * 300})
    assert (long.status_code, codes(long)) == (400, ["BAD_REQUEST"])


# --- enforce -------------------------------------------------------------------------------------------------

ARBITRARY = (
    [query for query, *_ in REFUSED]
    + [query for query, *_ in BAD]
    + [
        "{ cases(perPage: 50) { items { caseId linkedCases { caseId } } } }",
        "query Cases($n: Int!) { cases(perPage: $n) { items { caseId } } }",  # a listed name, another body
        "mutation { __typename }",
        "{ cases",
    ]
)


@pytest.mark.parametrize("mode", ["enforce", "closed"])
def test_enforce_refuses_every_arbitrary_query_of_the_hostile_battery_before_any_upstream_call(
    gateways, calls, mode
):
    gw = gateways[mode]
    before = gw.client.get("/healthz").json()["persistedQueries"]
    for query in ARBITRARY:
        for response in (
            post(gw, {"query": query}),
            post(gw, {"query": query}, accept=JSON),
            get(gw, {"query": query}),
            post(gw, {"query": query, "extensions": persisted(sha256(query))}),  # APQ registration
            post(gw, {"extensions": persisted(sha256(query))}),
        ):
            assert (response.status_code, codes(response)) == (400, ["DOCUMENT_NOT_TRUSTED"]), (
                query,
                response.text,
            )
            assert "data" not in response.json()
    assert calls.requests() == []
    assert gw.client.get("/healthz").json()["persistedQueries"]["registered"] == before["registered"]


def test_under_enforce_introspection_follows_its_own_setting(gateways, calls):
    query = "{ __schema { queryType { name } } }"
    assert (
        post(gateways["enforce"], {"query": query}).json()["data"]["__schema"]["queryType"]["name"] == "Query"
    )
    refused = post(gateways["closed"], {"query": query})
    assert (refused.status_code, codes(refused)) == (400, ["DOCUMENT_NOT_TRUSTED"])
    mixed = post(gateways["enforce"], {"query": "{ __typename cases { items { caseId } } }"})
    assert codes(mixed) == ["DOCUMENT_NOT_TRUSTED"]


def test_a_listed_documents_exact_text_runs_under_enforce(gateways, calls):
    answer = post(gateways["closed"], {"query": LEGACY})
    assert answer.status_code == 200 and len(answer.json()["data"]["legacyCases"]["items"]) == 2


# --- log -----------------------------------------------------------------------------------------------------


def test_log_runs_untrusted_documents_counts_them_per_operation_and_logs_each_once(gateways, calls):
    gw = gateways["log"]
    query = "query Untrusted { cases(perPage: 1) { items { caseId } } }"
    labels = {"document": "untrusted", "operation": "Untrusted", "trusted": "false"}
    before = Metrics.of(gw).get("casegraph_documents_total", **labels)
    for _ in range(3):
        assert post(gw, {"query": query}).json()["data"]["cases"]["items"]
    assert Metrics.of(gw).get("casegraph_documents_total", **labels) == before + 3
    assert len(log_lines(gw, r"untrusted document ran: operation Untrusted ")) == 1
    apq = post(gw, {"query": query + " ", "extensions": persisted(sha256(query + " "))})
    assert apq.status_code == 200 and apq.json()["data"]  # APQ registers as before
    assert len(log_lines(gw, r"untrusted document ran: operation Untrusted ")) == 2  # another document


# --- HTTP caching --------------------------------------------------------------------------------------------


def revalidated(
    gw: Gateway, params: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[httpx.Response, httpx.Response]:
    first = get(gw, params, headers)
    assert first.status_code == 200, first.text
    again = get(gw, params, {**(headers or {}), "If-None-Match": first.headers["etag"]})
    return first, again


def test_a_get_answer_carries_an_etag_and_if_none_match_gets_304_without_a_body(gateways, calls):
    gw = gateways["enforce"]
    params = {"documentId": f"sha256:{sha256(CASES)}", "variables": {"n": 5}}
    first, again = revalidated(gw, params)
    assert first.headers["cache-control"] == "private, no-cache"
    assert first.headers["vary"] == "Accept, Authorization"
    assert re.fullmatch(r'"[0-9a-f]{32}"', first.headers["etag"])
    assert first.json()["extensions"]["upstream"]["calls"] == 1  # executed: the ETag covers data only
    assert again.status_code == 304 and again.content == b""
    assert "content-type" not in again.headers
    for header in ("cache-control", "vary", "etag"):
        assert again.headers[header] == first.headers[header]
    # from the response cache: the same ETag (extensions differ, data do not)
    kept = get(gw, params)
    assert kept.json()["extensions"]["cacheControl"] == {"fromCache": True}
    assert kept.headers["etag"] == first.headers["etag"]
    listed = get(gw, params, {"If-None-Match": f'"other", W/{first.headers["etag"]}'})
    assert listed.status_code == 304
    assert get(gw, params, {"If-None-Match": '"other"'}).status_code == 200
    assert len(calls.requests()) == 1
    # another media type is another representation
    as_json = get(gw, params, {"Accept": JSON})
    assert as_json.headers["etag"] != first.headers["etag"]
    # POST answers carry no validator
    posted = post(gw, {"documentId": f"sha256:{sha256(CASES)}", "variables": {"n": 5}})
    assert "etag" not in posted.headers and "cache-control" not in posted.headers
    metrics = Metrics.of(gw)
    assert metrics.get("casegraph_not_modified_total", operation="Cases") >= 2


def test_the_etag_changes_with_the_data(gateways, calls):
    gw = gateways["enforce"]
    one = get(gw, {"documentId": sha256(ONE_CASE), "variables": {"id": 1}})
    two = get(gw, {"documentId": sha256(ONE_CASE), "variables": {"id": 2}})
    assert one.json()["data"] != two.json()["data"]
    assert one.headers["etag"] != two.headers["etag"]
    stale = get(
        gw, {"documentId": sha256(ONE_CASE), "variables": {"id": 2}}, {"If-None-Match": one.headers["etag"]}
    )
    assert stale.status_code == 200 and stale.json()["data"] == two.json()["data"]


def test_in_token_mode_a_get_answer_is_public_with_max_age_and_revalidates(gateways, calls):
    gw = gateways["token"]  # the response cache off: every answer executed, still cacheable by HTTP
    first, again = revalidated(
        gw, {"query": "{ cases(perPage: 2) { items { caseId } } }"}, {"Authorization": ""}
    )
    match = re.fullmatch(r"public, max-age=(\d+)", first.headers["cache-control"])
    assert match and 0 < int(match.group(1)) <= 60
    assert first.headers["vary"] == "Accept"
    assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]
    assert len(calls.requests()) == 1  # executed twice (no response cache here), from the upstream cache


def test_an_answer_with_an_upstream_failure_is_not_cacheable(gateways, calls):
    gw = gateways["enforce"]
    answer = get(gw, {"documentId": sha256(MISSING)})
    assert answer.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert answer.headers["cache-control"] == "no-store" and "etag" not in answer.headers


def test_refusals_and_request_errors_are_not_cacheable(gateways, calls):
    refused = get(gateways["enforce"], {"query": "{ cases { items { caseId } } }"})
    assert refused.status_code == 400 and refused.headers["cache-control"] == "no-store"
    assert "etag" not in refused.headers


def test_an_answer_with_a_not_found_for_a_dangling_link_is_cacheable(gateways, calls):
    gw = gateways["log"]
    # v1 cases whose v2 link points at nothing: their cases come batched in one cached v2 list, without them
    query = "query Links($page: Int!) { legacyCases(perPage: 100, page: $page) { items { legacyId case { caseId } } } }"
    for page in range(1, 5):
        first = get(gw, {"query": query, "variables": {"page": page}})
        if first.json().get("errors"):
            break
    else:
        raise AssertionError("no page of the demo data has a dangling link")
    assert {e["extensions"]["code"] for e in first.json()["errors"]} == {"NOT_FOUND"}
    assert first.json()["data"]["legacyCases"]["items"]  # partial: the data beside the errors
    assert first.headers["cache-control"] == "private, no-cache" and "etag" in first.headers
    again = get(gw, {"query": query, "variables": {"page": page}}, {"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


async def test_a_trusted_request_never_parses_and_reuses_the_plan_made_at_start(manifests, monkeypatch):
    trusted = load(str(manifests), "enforce", schema._schema, passes_answers(schema))
    found = trusted.find(OPAQUE_ID)
    assert found is not None
    # planned at start as requests name it: by its name, and without one (it is the document's only operation)
    assert sorted(key[1] or "" for key in found.document.plans) == ["", "Legacy"]
    plan = found.document.plans[(id(schema._schema), "Legacy", ())]

    def no_parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a trusted document was parsed again")

    monkeypatch.setattr("gateway.planning.documents.parse", no_parse)
    monkeypatch.setattr("strawberry.schema.schema.parse", no_parse)
    services = Services.create(Settings())
    try:
        context = RequestContext(
            services, Caller(credential_for(services.settings, None)), document=found.document
        )
        result = await schema.execute(found.body, context_value=context, operation_name="Legacy")
        assert result.errors  # no upstream here: the field fails, after planning
        assert context.plan is plan and context.plan_reused
    finally:
        await services.aclose()
