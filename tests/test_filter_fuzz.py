"""Generated filter inputs never make the gateway fail: every answer is a coded error or data, never a 500
or an INTERNAL_SERVER_ERROR. In process (gateway and demo upstream over ASGI transports) to stay fast.

The strategies are derived from the schema's own input types, so a filter field added later is fuzzed too:
well-formed values of each type, and values of the wrong type, out of range or malformed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.demo import DEMO_TOKEN
from gateway.demo import create_app as create_demo
from gateway.http.app import create_app
from gateway.ops.config import load_settings
from gateway.planning.executable import schema

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
DATES = st.dates().map(str)
DATETIMES = st.builds(
    lambda moment, zone: moment.isoformat(timespec="seconds") + zone,
    st.datetimes(),
    st.sampled_from(["", "Z", "+02:00", "-0530"]),
)
RELATIVE = st.one_of(
    st.sampled_from(["today", "yesterday"]),
    st.builds(
        lambda n, unit: f"{n} {unit}",
        st.integers(min_value=1, max_value=9999),
        st.sampled_from(["day", "days", "week", "weeks", "month", "months", "year", "years"]),
    ),
)
TIME_RANGES = st.builds(
    lambda a, b, c, d: f"{a:02d}:{b:02d}-{c:02d}:{d:02d}",
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 23),
    st.integers(0, 59),
)
# Values of each scalar as the schema accepts them...
VALID: dict[str, st.SearchStrategy[Any]] = {
    "Int": st.integers(min_value=1, max_value=400),
    "Float": st.floats(allow_nan=False, allow_infinity=False),
    "Boolean": st.booleans(),
    "String": st.text(min_size=1, max_size=30),
    "ID": st.one_of(
        st.integers(min_value=1, max_value=500).map(str), st.emails(), st.text(min_size=1, max_size=12)
    ),
    "Date": DATES,
    "DateTime": DATETIMES,
    "DateOrDateTime": st.one_of(DATES, DATETIMES),
    "RelativeDate": RELATIVE,
    "TimeRange": TIME_RANGES,
}
# ...and as it does not, or only to refuse them after (out of range, empty, malformed).
MALFORMED: dict[str, st.SearchStrategy[Any]] = {
    "Int": st.integers(),
    "Float": st.floats(allow_nan=False, allow_infinity=False),
    "Boolean": st.booleans(),
    "String": st.text(max_size=30),
    "ID": st.text(max_size=12),
    "Date": st.text(max_size=12),
    "DateTime": st.text(max_size=25),
    "DateOrDateTime": st.text(max_size=25),
    "RelativeDate": st.builds(lambda n, unit: f"{n} {unit}", st.integers(-3, 99999), st.text(max_size=8)),
    "TimeRange": st.builds(
        lambda a, b, c, d: f"{a:02d}:{b:02d}-{c:02d}:{d:02d}",
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 99),
    ),
}


def values(type_: GraphQLInputType, junk: bool) -> st.SearchStrategy[Any]:
    """Values for a GraphQL input type: well-formed for the type (though perhaps out of range or malformed
    within it: a bad date, an unknown enum), and with `junk`, sometimes of another type altogether."""
    if isinstance(type_, GraphQLNonNull):
        return values(type_.of_type, junk)
    if isinstance(type_, GraphQLList):
        item = values(type_.of_type, junk)
        # a single value coerces to a list; an empty list is refused (BAD_USER_INPUT), so only junk has them
        good = st.one_of(st.lists(item, min_size=0 if junk else 1, max_size=4), item)
    elif isinstance(type_, GraphQLEnumType):
        good = (
            st.one_of(st.sampled_from(sorted(type_.values)), st.text(max_size=10))
            if junk
            else st.sampled_from(sorted(type_.values))
        )
    elif isinstance(type_, GraphQLInputObjectType):
        required = {
            n: values(f.type, junk) for n, f in type_.fields.items() if isinstance(f.type, GraphQLNonNull)
        }
        optional = {n: values(f.type, junk) for n, f in type_.fields.items() if n not in required}
        good = st.fixed_dictionaries(required, optional=optional)
    elif isinstance(type_, GraphQLScalarType):
        good = st.one_of(VALID[type_.name], MALFORMED[type_.name]) if junk else VALID[type_.name]
    else:  # pragma: no cover - every input type is one of the above
        raise TypeError(type_)
    return st.one_of(good, JUNK) if junk else good


FILTER_TYPES = {name: schema._schema.type_map[name] for name in ("CaseFilter", "LegacyCaseFilter")}
QUERIES = {
    "CaseFilter": "query($f: CaseFilter) { cases(filter: $f, perPage: 3) { items { caseId } pageInfo { count } } "
    "c: cases(filter: $f, perPage: 1) { items { assignees { cases(filter: $f, first: 2) { caseId } } } } }",
    "LegacyCaseFilter": "query($f: LegacyCaseFilter) { legacyCases(filter: $f, perPage: 3) { items { legacyId } "
    "pageInfo { count } } }",
}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def client(loop: asyncio.AbstractEventLoop) -> Iterator[tuple[httpx.AsyncClient, Any]]:
    demo = create_demo()
    app = create_app(
        load_settings(v1_url="http://demo.test", v2_url="http://demo.test", cache_ttl=0, retry_attempts=1)
    )
    services = app.state.services
    loop.run_until_complete(services.http.client.aclose())
    # an exception in the demo is a 500 as over HTTP (and fails `check`), not an exception in the gateway
    services.http.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=demo, raise_app_exceptions=False)
    )
    gateway = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://gw"
    )
    yield gateway, demo
    loop.run_until_complete(gateway.aclose())
    loop.run_until_complete(services.aclose())


def ask(
    loop: asyncio.AbstractEventLoop, gateway: httpx.AsyncClient, query: str, value: Any
) -> httpx.Response:
    return loop.run_until_complete(
        gateway.post(
            "/graphql",
            json={"query": query, "variables": {"f": value}},
            headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
        )
    )


def check(response: httpx.Response, demo: Any) -> None:
    assert response.status_code != 500, response.text
    if response.status_code == 200:
        answer = response.json()
        codes = [e.get("extensions", {}).get("code") for e in answer.get("errors", [])]
        event(f"answer: {sorted(set(codes)) or 'data'}")
        assert "INTERNAL_SERVER_ERROR" not in codes, answer
        assert all(codes), answer  # every error is coded
        # the upstream never refused or failed on what the gateway let through
        assert not [code for code in codes if code.startswith("UPSTREAM_")], answer
        assert "Internal server error." not in response.text
    else:  # a request the HTTP layer refuses (400) is the caller's error, and said so
        assert response.status_code in (400, 413), response.text
    # the upstream never failed on what the gateway sent it (bad input is refused before any call)
    statuses = [entry["status"] for entry in demo.state.log.entries]
    demo.state.log.clear()
    assert 500 not in statuses and 400 not in statuses, statuses


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(value=values(FILTER_TYPES["CaseFilter"], junk=False))
def test_generated_case_filters_never_fail_the_gateway(loop, client, value):
    gateway, demo = client
    check(ask(loop, gateway, QUERIES["CaseFilter"], value), demo)


@FUZZ
@given(value=values(FILTER_TYPES["LegacyCaseFilter"], junk=False))
def test_generated_legacy_filters_never_fail_the_gateway(loop, client, value):
    gateway, demo = client
    check(ask(loop, gateway, QUERIES["LegacyCaseFilter"], value), demo)


@FUZZ
@given(name=st.sampled_from(sorted(FILTER_TYPES)), value=st.data())
def test_filters_of_any_shape_never_fail_the_gateway(loop, client, name, value):
    gateway, demo = client
    check(ask(loop, gateway, QUERIES[name], value.draw(values(FILTER_TYPES[name], junk=True))), demo)
