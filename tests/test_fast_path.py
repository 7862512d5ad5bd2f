"""Differential test: the planned path (upstream answers decoded for the fields the operation reads, answers
built by compiled projections) and graphql-core's plain execution over fully decoded upstream answers give
byte-identical answers (data, errors with their messages and paths, extensions) for a corpus of queries,
every scalar and enum type, defective upstream values, and hypothesis-generated selections.

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.demo import create_app as create_demo
from gateway.http.answer import encode_answer, format_error
from gateway.http.services import Services
from gateway.ops.config import load_settings
from gateway.planning.context import RequestContext
from gateway.planning.executable import build_schema
from gateway.planning.route import PATHS, Fallback
from gateway.upstream.cache import UpstreamCache
from gateway.upstream.credentials import Caller, credential_for
from gateway.upstream.decoding import FULL, Decoders
from gateway.upstream.http import UpstreamHTTP
from gateway.upstream.v1 import V1API
from gateway.upstream.v2 import V2API
from tests.schema_walk import selection, zero_cost_selection

FAST, PLAIN = build_schema(fast=True), build_schema(fast=False)
SAMPLE = json.loads((Path(__file__).parent / "data" / "v2_sample_response.json").read_text())
BASE = "http://upstream.test"

CASE = selection("Case")
ZERO_COST = zero_cost_selection("Case")  # copied and derived: every field of Case that makes no upstream call
LEGACY = selection("LegacyCase")
CORPUS: list[tuple[str, dict[str, Any]]] = [
    ("{ cases(perPage: 50) { items %s pageInfo { page perPage pages count hasNextPage } } }" % CASE, {}),
    ("{ cases(perPage: 50) { items %s pageInfo { page count } } }" % ZERO_COST, {}),
    ("{ cases(perPage: 9) { items { id sla { status } activitiesMeta { currentPage nextPage } } } }", {}),
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
    # the fan-out, its lookahead under an alias, a fragment and a switch
    ("{ legacyCases(perPage: 20) { items { legacyId case { caseId name status priority } } } }", {}),
    (
        "query($on: Boolean!) { l: legacyCases(perPage: 12) { items { ...Link } } } "
        "fragment Link on LegacyCase { caseNumber case @include(if: $on) { ...Few } } fragment Few on Case { caseId sla { status } }",
        {"on": True},
    ),
    (
        "query($on: Boolean!) { l: legacyCases(perPage: 12) { items { caseNumber case @include(if: $on) { caseId } } } }",
        {"on": False},
    ),
    # a fragment spread twice in each of twenty fragments: planned once, answered as plain execution does
    (
        "{ case(id: 3) { ...F19 } } fragment F0 on Case { caseId name } "
        + " ".join(f"fragment F{i} on Case {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 20)),
        {},
    ),
    # nested fetches whose parents are decoded for what they read
    (
        "{ cases(perPage: 5) { items { name legacyCase { caseNumber case { caseId linkedCaseRefs { name } } } } } }",
        {},
    ),
    (
        "{ cases(perPage: 5) { items { activityPage(perPage: 3) { items { user { email cases(first: 1) { caseId } } } } } } }",
        {},
    ),
    # cursor connections
    (
        "{ casesConnection(first: 7) { totalCount edges { cursor node %s } "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }" % CASE,
        {},
    ),
    (
        "{ legacyCasesConnection(last: 11) { totalCount edges { cursor node %s } "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }" % LEGACY,
        {},
    ),
    (
        "{ cases(perPage: 5) { items { caseId assignees { userId casesConnection(first: 2) { totalCount "
        "edges { cursor node { caseId name } } pageInfo { hasNextPage } } } tags { name casesConnection(last: 1) "
        "{ edges { node { id caseId } } } } activitiesConnection(first: 3) { edges { cursor node { id activityType "
        "user { email } } } pageInfo { endCursor } } recordsConnection(last: 2) { totalCount edges { node "
        "{ id recordTypeName results { name value } createdAt } } } } } }",
        {},
    ),
    (
        "query($a: String, $b: String) { a: casesConnection(first: 2, after: $a) { edges { cursor } } "
        "b: legacyCasesConnection(before: $b) { totalCount } c: casesConnection(first: 3, last: 3) { totalCount } "
        "d: casesConnection(first: 2, order: PRIORITY_DESC) { edges { node { caseId priority } } } }",
        {"a": "YzE6MDAwMDAwMDAwMDAwOjM6MzAw", "b": "not a cursor"},
    ),
    # only `__typename` on the root: answered from the plan, without graphql-core (path `constant`)
    ("{ __typename }", {}),
    ("{ a: __typename __typename b: __typename }", {}),
    (
        "query Q { ...R __typename @include(if: true) x: __typename @skip(if: true) ... on Query { y: __typename } } "
        "fragment R on Query { r: __typename }",
        {},
    ),
    # variables: graphql-core checks their values
    ("query($x: Boolean!) { __typename @include(if: $x) a: __typename @skip(if: $x) }", {"x": True}),
]


def services_for(transport: httpx.AsyncBaseTransport) -> Services:
    settings = load_settings(v1_url=BASE, v2_url=BASE, cache_ttl=0)
    cache = UpstreamCache(settings)
    http = UpstreamHTTP(settings, cache, transport=transport)
    return Services(settings, cache, http, V1API(http, settings.v1_base), V2API(http, settings.v2_base))


class FullyDecoded(RequestContext):
    """Plain execution's reference: every upstream answer decoded whole, whatever the plan reads."""

    @property
    def decoders(self) -> Decoders:
        return FULL


async def answer(schema: Any, services: Services, query: str, variables: dict[str, Any]) -> bytes:
    """The JSON the gateway would send for this query (the app's own error formatting): planned on the fast
    schema, plain and fully decoded on the plain one."""
    caller = Caller(credential_for(services.settings, "Bearer demo-token"))
    context = (RequestContext if schema is FAST else FullyDecoded)(services, caller)
    result = await schema.execute(query, variable_values=variables, context_value=context)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(error) for error in result.errors]
    return encode_answer(body)


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
    ({"name": 12345}, True),  # String from an int: UPSTREAM_BAD_RESPONSE, not "12345"
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
    ({"sla": {**SLA, "percent_elapsed": True}}, True),  # Float from a bool: not 1
    ({"sla": {**SLA, "percent_elapsed": 12, "remaining_time_seconds": 1.5}}, False),  # int and float
    ({"metadata": {"big": 2**70, "tiny": 1e-300, "huge": 1e300}}, False),  # JSON: an int past 64 bits
    ({"sla": {**SLA, "percent_elapsed": 1e16, "current_time_seconds": -0.0}}, False),  # floats written as is
    ({"name": 2**70}, True),  # String from an int past 64 bits
    ({"sub_status": {"id": "7", "name": None}}, True),  # Int from a string
    ({"priority": None, "status": "CLOSED"}, False),  # nullable enum null, another enum value
    ({"created_at": 12345}, None),  # DateTime from a number
    ({"linked_cases": [{"case_id": "x"}]}, None),  # a linked id that is no id
    ({"sla": {**SLA, "exceeded": None, "percent_elapsed": None}}, False),  # derived from nulls
    ({"sla": {"sla_type": "response"}}, False),  # derived from keys absent
    ({"slas": [{**SLA, "percent_elapsed": "lots"}, None]}, True),  # a derived field's error in a list
    ({"activities_meta": {"current_page": "https://x/?page=99999999999", "count": 3}}, False),  # no page
    ({"activities_meta": "page 2"}, True),  # derived fields of a string
    ({"assignees": {"user_id": "1"}}, None),  # an object where a list is expected
    (
        {"tasks": [{**SAMPLE["cases"][0]["tasks"][0], "completed": 1}]},
        True,
    ),  # Boolean from a number: not true
    ({"sub_status": {"id": True, "name": "To do"}}, True),  # Int from a bool: not 1
    ({"sub_status": {"id": 2.5, "name": "To do"}}, True),  # Int from a fraction
    ({"tasks": [{**SAMPLE["cases"][0]["tasks"][0], "assignees": [{"id": 123}]}]}, True),  # ID from a number
    ({"description": False}, True),  # String from a bool: not "false"
    # DateTime values the compiled path checks together (`check_timestamps`): RFC 3339's pattern passes these
    # as they are, though msgspec's calendar refuses the first two (graphql-core then answers)
    ({"opened_at": "2024-02-30T10:00:00Z", "updated_at": "2016-12-31T23:59:60Z"}, False),
    ({"opened_at": "2024-07-01T10:22:20.5-03:30", "resolved_at": None}, False),
    ({"opened_at": "2024-07-01 10:22:20"}, False),  # another ISO 8601 form: rewritten to RFC 3339
    ({"opened_at": "2024-07-01t10:22:20z"}, True),  # lower case: msgspec reads it, RFC 3339's form is upper
    ({"created_at": None}, True),  # a non-null DateTime null
    ({"opened_at": ["2024-07-01T10:22:20Z"]}, True),  # a list of one
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
        for query in (
            "{ cases { items %s } }" % CASE,
            "{ cases { items { caseId name sla { status } } } }",
            "{ cases { items %s } }" % ZERO_COST,
        ):
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
        assert {e["extensions"]["code"] for e in errors} == {"UPSTREAM_BAD_RESPONSE"}, errors


async def test_plain_fields_do_not_go_through_graphql_core(demo_services, monkeypatch):
    """The fast path is really taken: plain fields, and derived fields through the resolver's own function
    (`compute`), never reach graphql-core's execute_field; fetching fields do, unless their answer is known
    (the fan-out's lookahead)."""
    from gateway.planning.execution import FastExecutor

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
    assert executed == ["Query.cases"]
    executed.clear()
    fan_out = (
        "{ legacyCases(perPage: 20) { items { id legacyId references { label } case { caseId name } } } }"
    )
    await answer(FAST, demo_services, fan_out, {})
    # the items whose v2 case is missing (NOT_FOUND) go to graphql-core, which reports the error
    assert executed.count("Query.legacyCases") == 1
    assert 0 < executed.count("LegacyCase.case") < 20
    executed.clear()
    await answer(FAST, demo_services, "{ cases(perPage: 3) { items { linkedCases { caseId } } } }", {})
    assert executed.count("Case.linkedCases") == 3


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
    from gateway.http.app import create_app
    from gateway.planning.execution import FastExecutor

    app = create_app(load_settings(v1_url=BASE, v2_url=BASE, execution=execution))
    view = next(route for route in app.routes if route.path == "/graphql").app
    assert (view.schema.execution_context_class is FastExecutor) is fast


# --- hypothesis: random selections of the Case type, planned vs plain ------------------------------------

LEAVES = ["caseId", "name", "status", "priority", "url", "metadata", "openedAt", "createdAt", "id"]
OBJECTS = {
    "subStatus": ["id", "name"],
    "team": ["id", "name", "__typename"],
    "assignees": ["userId", "email", "firstName"],
    "sla": ["percentElapsed", "exceeded", "status", "slaType"],
    "slas": ["status", "remainingTimeSeconds"],
    "tags": ["id", "name"],
    "activities": ["id", "activityType", "createdAt"],
    "linkedCases": ["caseId", "name", "priority"],
    "linkedCaseRefs": ["caseId"],
    "legacyCase": ["legacyId", "caseNumber", "createdOn"],
    "activitiesMeta": ["count", "perPage"],
}


@st.composite
def case_selections(draw: Any) -> str:
    parts = []
    for index, leaf in enumerate(draw(st.lists(st.sampled_from(LEAVES), min_size=1, max_size=6))):
        alias = f"a{index}: " if draw(st.booleans()) else ""
        parts.append(alias + leaf)
    for name in draw(st.lists(st.sampled_from(sorted(OBJECTS)), max_size=4, unique=True)):
        inner = draw(st.lists(st.sampled_from(OBJECTS[name]), min_size=1, max_size=3, unique=True))
        parts.append(f"{name} {{ {' '.join(inner)} }}")
    body = " ".join(parts)
    wrap = draw(st.sampled_from(["plain", "inline", "fragment"]))
    if wrap == "inline":
        body = f"... on Case {{ {body} }}"
    elif wrap == "fragment":
        return f"{{ cases(perPage: 12) {{ items {{ ...F }} }} }} fragment F on Case {{ {body} }}"
    return f"{{ cases(perPage: 12) {{ items {{ {body} }} }} }}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=case_selections())
async def test_generated_selections_give_the_same_bytes(demo_services, query):
    fast = await answer(FAST, demo_services, query, {})
    assert fast == await answer(PLAIN, demo_services, query, {})


async def test_each_case_is_decoded_for_the_fields_read(demo_services):
    """The plan's decoder keeps the keys the fan-out reads of the v2 answer, nothing else."""
    from gateway.planning.documents import document_for

    query = "{ legacyCases(perPage: 20) { items { legacyId case { caseId name status priority } } } }"
    plan, _ = document_for(query, 3000).plan(FAST._schema, None, {})
    assert plan is not None
    body = orjson.dumps({"cases": SAMPLE["cases"], "meta": SAMPLE["meta"]})
    decoded = plan.decoders.v2_list(body)
    assert [sorted(case) for case in decoded["cases"]] == [["case_id", "name", "priority", "status"]] * len(
        SAMPLE["cases"]
    )
    assert decoded["meta"] == SAMPLE["meta"]
    legacy = plan.decoders.v1_case(
        orjson.dumps({"id": 1, "case_number": "x", "client": {"id": 2}, "case_type": None})
    )
    assert legacy == {"id": 1, "case_number": "x", "case_type": None}


async def test_cases_that_copy_and_derive_are_decoded_straight_into_their_answers(demo_services):
    """The 50-case queries' cases come out of the decoder as their answers (gateway/planning/answers.py), derived fields
    computed on them: the projection passes them through, and the bytes are plain execution's over dicts."""
    caller = Caller(credential_for(demo_services.settings, "Bearer demo-token"))
    for selected in (CASE, ZERO_COST, "{ id caseId sla { status } }"):
        context = RequestContext(demo_services, caller)
        query = "{ cases(perPage: 50) { items %s } }" % selected
        result = await FAST.execute(query, context_value=context)
        assert context.plan is not None and len(context.plan.answers) == 1
        assert (context.route.path, context.route.fallback) == ("answers", None)
        [answer_class] = context.plan.answers.values()
        items = result.data["cases"]["items"]
        assert len(items) == 50 and all(item.__class__ is answer_class for item in items)
        assert await answer(FAST, demo_services, query, {}) == await answer(PLAIN, demo_services, query, {})
    # keys a derived field reads are decoded but never encoded
    encoded = await answer(FAST, demo_services, "{ cases(perPage: 3) { items { id sla { status } } } }", {})
    assert b"case_id" not in encoded and b"exceeded" not in encoded and b"percent_elapsed" not in encoded
    # a selection that fetches, or a second reader of v2 cases, keeps the projections, and says why
    for other, why in (
        ("{ cases(perPage: 5) { items { caseId legacyCase { legacyId } } } }", Fallback.FETCH),
        ("{ cases(perPage: 5) { items { caseId linkedCases { caseId } } } }", Fallback.SHARED_CASES),
        ("{ cases(perPage: 5) { items { caseId } } case(id: 1) { name } }", Fallback.SHARED_CASES),
        ("{ cases(perPage: 5) { items { a: caseId b: caseId } } }", Fallback.SAME_KEY_TWICE),
        ("{ legacyCases(perPage: 5) { items { legacyId } } }", Fallback.NO_CASE_LIST),
    ):
        context = RequestContext(demo_services, caller)
        await FAST.execute(other, context_value=context)
        assert context.plan is not None and context.plan.answers == {}, other
        assert (context.route.path, context.route.fallback) == ("projections", why), other


@pytest.mark.parametrize(("query", "variables"), CORPUS, ids=[f"q{n}" for n in range(len(CORPUS))])
async def test_every_query_says_which_path_answered_it_and_why(demo_services, query, variables):
    """No silent fallback: each request records the path that answered it (`Route`), and a reason the code
    names whenever that is not the answers decoded straight from upstream."""
    context = RequestContext(
        demo_services, Caller(credential_for(demo_services.settings, "Bearer demo-token"))
    )
    await FAST.execute(query, variable_values=variables, context_value=context)
    route = context.route
    assert route.path in PATHS
    assert (route.fallback is None) == (route.path in ("constant", "answers")), route
    assert route.fallback is None or isinstance(route.fallback, Fallback)
    assert route.fallback not in (Fallback.NOT_PLANNED, Fallback.UNDECLARED, Fallback.PLAIN_EXECUTOR)


async def test_an_operation_of_only_root_typenames_is_answered_from_its_plan(demo_services, monkeypatch):
    """`{ __typename }` (aliases, fragments and literal switches resolved) is answered from the plan, its `data`
    known once; graphql-core's executor is not called, and the route names the path. An operation with
    variables, or with any other field, is executed as usual."""
    import gateway.planning.planner as planner

    def no_execute(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("graphql-core executed a constant operation")

    caller = Caller(credential_for(demo_services.settings, "Bearer demo-token"))
    with monkeypatch.context() as patched:
        patched.setattr(planner, "execute", no_execute)
        for query in (
            "{ __typename }",
            "{ a: __typename __typename b: __typename }",
            "query Q { ...R x: __typename @skip(if: true) } fragment R on Query { r: __typename }",
        ):
            for _ in range(2):  # planned, then reused
                context = RequestContext(demo_services, caller)
                result = await FAST.execute(query, context_value=context)
                assert result.errors is None and (context.route.path, context.route.fallback) == (
                    "constant",
                    None,
                ), query
        result = await FAST.execute("{ a: __typename b: __typename }", context_value=context)
        assert result.data == {"a": "Query", "b": "Query"}
    for query, variables in (
        ("query($x: Boolean!) { __typename @include(if: $x) }", {"x": True}),
        ("{ __typename case(id: 1) { caseId } }", {}),
    ):
        context = RequestContext(demo_services, caller)
        await FAST.execute(query, variable_values=variables, context_value=context)
        assert context.route.path == "projections", query
    # a required variable not given: graphql-core's own request error, not a constant answer
    context = RequestContext(demo_services, caller)
    result = await FAST.execute("query($x: Boolean!) { __typename @skip(if: $x) }", context_value=context)
    assert result.data is None and result.errors
    assert result.errors[0].message.startswith("Variable '$x' ")


async def test_answers_met_by_graphql_core_are_not_executed_again():
    """A projection above the cases gives up (a page count over 2^31): graphql-core completes the page, meets
    the cases already decoded into their answers and keeps them as they are; the one error is the count's, at
    its path, as plain execution gives it."""
    body = {"cases": SAMPLE["cases"], "meta": {**SAMPLE["meta"], "count": 2**40}}
    services = services_for(httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    try:
        for selected in (CASE, ZERO_COST):
            query = "{ cases { items %s pageInfo { count } } }" % selected
            fast = await answer(FAST, services, query, {})
            assert fast == await answer(PLAIN, services, query, {})
            errors = orjson.loads(fast)["errors"]
            assert [error["path"] for error in errors] == [["cases", "pageInfo", "count"]]
    finally:
        await services.aclose()


async def test_a_planned_document_skips_strawberrys_pipeline(demo_services, monkeypatch):
    """The first request of a document goes through strawberry's pipeline (the Planner parses, validates and
    plans it); later ones are executed from the plan at once (`run_planned`), with the same answer and
    `extensions.upstream`, and the limits still checked for each request's variables."""
    from gateway.planning.planner import Planner

    hooks: list[str] = []
    original = Planner.on_validate

    def counting(self):
        hooks.append(self.execution_context.query)
        yield from original(self)

    monkeypatch.setattr(Planner, "on_validate", counting)
    query = "query Skips($n: Int!) { cases(perPage: $n) { items { id caseId legacyCase { legacyId } } } }"
    first = await answer(FAST, demo_services, query, {"n": 3})
    assert len(hooks) == 1
    again = await answer(FAST, demo_services, query, {"n": 3})
    assert len(hooks) == 1 and again == first
    assert first == await answer(PLAIN, demo_services, query, {"n": 3})  # another schema: planned for it
    assert len(hooks) == 2
    caller = Caller(credential_for(demo_services.settings, "Bearer demo-token"))
    result = await FAST.execute(
        query, variable_values={"n": 2}, context_value=RequestContext(demo_services, caller)
    )
    assert result.extensions == {"upstream": {"calls": 3, "sharedCalls": 0, "cacheHits": 0}}
    # past MAX_QUERY_COST (1 listing + 40 v1 cases) the plan is not run: the pipeline refuses it
    strict = services_for(httpx.ASGITransport(app=create_demo()))
    strict.settings = load_settings(v1_url=BASE, v2_url=BASE, cache_ttl=0, max_query_cost=40)
    try:
        refused = orjson.loads(await answer(FAST, strict, query, {"n": 40}))
    finally:
        await strict.aclose()
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert len(hooks) == 3


def test_timestamps_checked_together_pass_only_what_the_datetime_serialiser_passes_as_it_is():
    """`check_timestamps` (the compiled path's DateTime check: shapes, then msgspec's calendar, over every value
    of a body at once) never passes a value that `DateTime`'s serialiser would not pass unchanged."""
    from datetime import datetime

    import msgspec

    from gateway.planning.answers import check_timestamps
    from gateway.schema.scalars import _RFC3339

    texts = [f"2024-{n:02d}-01T10:22:20Z" for n in range(100)]
    texts += [f"2024-02-{n:02d}T10:22:20Z" for n in range(100)]
    texts += [f"2024-07-01T{n:02d}:{n:02d}:{n:02d}Z" for n in range(100)]
    texts += [
        f"2024-07-01T10:22:20{sign}{h:02d}:{m:02d}" for sign in "+-" for h in range(30) for m in (0, 59, 60)
    ]
    texts += [
        "2024-07-01T10:22:20.123456789Z",
        "0000-01-01T00:00:00Z",
        "2024-07-01T10:22:20",
        "2024-07-01T10:22Z",
    ]
    texts += [
        "2024-07-01t10:22:20Z",
        "2024-07-01 10:22:20Z",
        "2024-07-01T10:22:20+0200",
        "+2024-07-01T10:22:20Z",
    ]
    passed = 0
    for text in texts:
        raw = msgspec.Raw(msgspec.json.encode(text))
        try:
            check_timestamps([raw], nullable=False)
        except ValueError:
            continue
        passed += 1
        assert _RFC3339.fullmatch(text), text
        datetime.fromisoformat(text)  # a real moment
    assert passed > 100
    usual = [msgspec.Raw(b'"2024-07-01T10:22:20Z"')] * 3
    check_timestamps(usual, nullable=False)
    check_timestamps([*usual, msgspec.Raw(b"null")], nullable=True)
    for bad in (b"null", b"12", b'"2024-07-01T10:22:20\\u005a"', b'["2024-07-01T10:22:20Z"]'):
        with pytest.raises(ValueError):
            check_timestamps([*usual, msgspec.Raw(bad)], nullable=False)
