"""Differential test: the compiled execution path and graphql-core's plain execution give byte-identical
answers (data, errors with their messages and paths, extensions) for a corpus of queries.

Both run in process against the demo upstream app (over an ASGI transport, so the upstream JSON is
the real thing) or against a deliberately broken upstream, each with a fresh context and no cache.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.cache import UpstreamCache
from gateway.config import load_settings
from gateway.context import Context, Services
from gateway.credentials import Caller, credential_for
from gateway.demo import create_app as create_demo
from gateway.endpoint import format_error
from gateway.schema import build_schema
from gateway.upstream.http import UpstreamHTTP
from gateway.upstream.v1 import V1API
from gateway.upstream.v2 import V2API
from tests.schema_walk import selection

FAST, PLAIN = build_schema(fast=True), build_schema(fast=False)
SAMPLE = json.loads((Path(__file__).parent / "data" / "v2_sample_response.json").read_text())
BASE = "http://upstream.test"

CASE = selection("Case")
LEGACY = selection("LegacyCase")
CORPUS: list[tuple[str, dict[str, Any]]] = [
    ("{ cases(perPage: 50) { items %s pageInfo { page perPage pages count hasNextPage } } }" % CASE, {}),
    (
        "{ cases(perPage: 20, order: PRIORITY_DESC) { items { id caseId sla { status } slas { status sla: slaType } } } }",
        {},
    ),
    (
        "{ a: cases(perPage: 3) { items { x: caseId y: name caseId } } b: cases(page: 2, perPage: 2) { items { caseId } } }",
        {},
    ),
    (
        "query { cases(perPage: 10) { items { ...head ... on Case { assignees { userId } } assignees { email } } } }"
        " fragment head on Case { __typename caseId status priority team { __typename id } }",
        {},
    ),
    (
        "query($yes: Boolean!, $no: Boolean!) { cases(perPage: 8) { items { caseId name @include(if: $yes) "
        "description @skip(if: $yes) tags @include(if: $no) { name } author @skip(if: $no) { userId } } } }",
        {"yes": True, "no": False},
    ),
    (
        "query($yes: Boolean!, $no: Boolean!) { cases(perPage: 8) { items { caseId name @include(if: $yes) "
        "description @skip(if: $yes) tags @include(if: $no) { name } author @skip(if: $no) { userId } } } }",
        {"yes": False, "no": True},
    ),
    (
        "{ cases(perPage: 50) { items { caseId linkedCases { caseId name status } linkedCaseRefs { caseId } } } }",
        {},
    ),
    ("{ a: case(id: 1) { caseId name } b: case(id: 999999) { caseId } }", {}),
    ("{ legacyCases(perPage: 30) { items %s } }" % LEGACY, {}),
    (
        "{ legacyCases(perPage: 30) { items { legacyId caseNumber references { position label value } "
        "case { caseId name legacyCase { legacyId } } } } }",
        {},
    ),
    (
        "{ cases(perPage: 6) { items { caseId activityPage(page: 2, perPage: 5) { items { id activityType user { email } } "
        "pageInfo { page pages count } } recordPage { items { recordTypeName recordTypeRecordResults { id } } } } } }",
        {},
    ),
    (
        "{ cases(perPage: 5) { items { caseId assignees { userId cases(first: 2) { caseId name } } "
        "tags { name cases(first: 1) { caseId } } } } }",
        {},
    ),
    (
        "query($a: ID!, $b: ID!) { a: node(id: $a) { __typename id ... on Case { caseId name } } "
        "b: node(id: $b) { __typename ... on LegacyCase { legacyId caseType { name referenceLabels } } } }",
        {"a": "Q2FzZTox", "b": "TGVnYWN5Q2FzZToxMDAx"},
    ),
    ("{ cases(perPage: 4) { items { caseId caseId metadata fields { caseInput { key } value } } } }", {}),
]


def services_for(transport: httpx.AsyncBaseTransport) -> Services:
    settings = load_settings(v1_url=BASE, v2_url=BASE, cache_ttl=0)
    cache = UpstreamCache(settings)
    http = UpstreamHTTP(settings, cache, transport=transport)
    return Services(settings, cache, http, V1API(http, settings.v1_base), V2API(http, settings.v2_base))


async def answer(schema: Any, services: Services, query: str, variables: dict[str, Any]) -> bytes:
    """The JSON the gateway would send for this query (the app's own error formatting)."""
    caller = Caller(credential_for(services.settings, "Bearer demo-token"))
    result = await schema.execute(query, variable_values=variables, context_value=Context(services, caller))
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(error) for error in result.errors]
    return orjson.dumps(body)


@pytest.fixture(scope="module")
async def demo_services():
    services = services_for(httpx.ASGITransport(app=create_demo()))
    yield services
    await services.aclose()


@pytest.mark.parametrize(("query", "variables"), CORPUS, ids=[f"q{n}" for n in range(len(CORPUS))])
async def test_fast_and_plain_execution_give_the_same_bytes(demo_services, query, variables):
    fast = await answer(FAST, demo_services, query, variables)
    plain = await answer(PLAIN, demo_services, query, variables)
    assert b'"data":null' not in fast
    assert fast == plain


SLA = SAMPLE["cases"][0]["sla"]
# Upstream values the schema does not expect, each served beside a good case, and whether the answer has an
# error on that case (True), none (False), or either way as long as both paths agree (None).
FAULTS: list[tuple[dict[str, Any], bool | None]] = [
    ({"status": None}, True),  # non-null enum is null
    ({"priority": "URGENT"}, None),  # not an enum value
    ({"tags": "not-a-list"}, None),  # list field with a string
    ({"assignees": [None]}, None),  # non-null list item is null
    ({"sla": {**SLA, "percent_elapsed": "lots"}}, True),  # Float from a non-numeric string
    ({"name": 12345}, False),  # String from an int: serialised as "12345", no error
    ({"case_id": 2**40}, True),  # Int out of range
    ({"team": "Test team 1"}, None),  # object field with a string
    (
        {"activities": [{**SAMPLE["cases"][0]["activities"][0], "created_at": None}]},
        None,
    ),  # non-null DateTime
    ({"metadata": {"nested": [1, {"a": None}]}}, False),  # JSON scalar: anything goes...
    ({"metadata": {"deep": json.loads("[" * 70 + "]" * 70)}}, True),  # ...nested up to 64 levels
    ({"created_at": "not a date"}, True),  # DateTime: an upstream string that is none
    ({"updated_at": 12345}, True),  # DateTime from a number
    ({"opened_at": "2024-03-25T15:40:39.123456789+02:00"}, False),  # any ISO 8601 timestamp passes as it is
    ({"sla": {**SLA, "percent_elapsed": 2**60 + 1}}, True),  # Float: an int no float holds exactly
    ({"sla": {**SLA, "percent_elapsed": True}}, False),  # Float from a bool: 1
    ({"sla": {**SLA, "percent_elapsed": 12, "remaining_time_seconds": 1.5}}, False),  # int and float
]


@pytest.mark.parametrize(
    ("fault", "error"), FAULTS, ids=[f"{next(iter(f))}-{n}" for n, (f, _) in enumerate(FAULTS)]
)
async def test_unexpected_upstream_values_give_the_same_answer(fault, error):
    good = SAMPLE["cases"][0]
    body = {"cases": [good, {**copy.deepcopy(good), "case_id": 2, **fault}], "meta": SAMPLE["meta"]}
    services = services_for(httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    answers = []
    try:
        for query in ("{ cases { items %s } }" % CASE, "{ cases { items { caseId name sla { status } } } }"):
            fast = await answer(FAST, services, query, {})
            assert fast == await answer(PLAIN, services, query, {})
            answers.append(orjson.loads(fast))
    finally:
        await services.aclose()
    errors = answers[0].get("errors", [])
    if error is False:
        assert errors == []
    elif error:
        assert errors and errors[0]["path"][:3] == ["cases", "items", 1]


async def test_plain_fields_do_not_go_through_graphql_core(demo_services, monkeypatch):
    """The fast path is really taken: only fields with resolvers reach graphql-core's execute_field."""
    from gateway.execution import FastExecutor

    executed: list[str] = []
    original = FastExecutor.execute_field

    def counting(self, parent_type, source, field_details_list, path, position_context):
        executed.append(f"{parent_type.name}.{field_details_list[0].node.name.value}")
        return original(self, parent_type, source, field_details_list, path, position_context)

    monkeypatch.setattr(FastExecutor, "execute_field", counting)
    await answer(FAST, demo_services, "{ cases(perPage: 50) { items %s } }" % CASE, {})
    assert executed == ["Query.cases"]
    executed.clear()
    await answer(FAST, demo_services, "{ cases(perPage: 3) { items { id caseId sla { status } } } }", {})
    assert executed.count("Case.id") == 3
    assert {name for name in executed} <= {
        "Query.cases",
        "CasePage.items",
        "Case.id",
        "Case.sla",
        "SLA.status",
    }


def test_execution_setting_serves_the_same_answers_over_http(upstream, gateway, logs_dir):
    """EXECUTION=plain (the benchmark's baseline, and the fallback) answers byte for byte as the default
    fast gateway does, over real HTTP, and really runs graphql-core's execution (no projection compiled)."""
    from tests.support import AUTH, start_gateway, stop

    plain = start_gateway(upstream.url, logs_dir / "gateway-plain.log", CACHE_TTL="0", EXECUTION="plain")
    try:
        for query, variables in CORPUS[:6]:
            body = {"query": query, "variables": variables}
            fast_bytes = gateway.client.post("/graphql", json=body, headers=AUTH).content
            plain_bytes = plain.client.post("/graphql", json=body, headers=AUTH).content
            assert b'"data":null' not in fast_bytes
            assert plain_bytes == fast_bytes
    finally:
        stop(plain.process)


@pytest.mark.parametrize(("execution", "fast"), [("fast", True), ("plain", False)])
def test_execution_setting_picks_the_executor(execution, fast):
    from gateway.app import create_app
    from gateway.execution import FastExecutor

    app = create_app(load_settings(v1_url=BASE, v2_url=BASE, execution=execution))
    view = next(route for route in app.routes if route.path == "/graphql").app
    assert (view.schema.execution_context_class is FastExecutor) is fast
