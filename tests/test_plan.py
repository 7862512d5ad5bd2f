"""Operation plans (gateway/planning/plan.py): one parse, one validation and one plan per operation, reused; limits
walked in linear time; lookaheads that honour fragments and @include/@skip."""

from __future__ import annotations

from typing import Any

import graphql
import pytest

from gateway.planning.checks import check
from gateway.planning.documents import DOCUMENTS, document_for, operation_of
from gateway.planning.executable import schema
from gateway.planning.limits import Limits

SCHEMA = schema._schema
# 20 fragments, each spreading the previous one twice: 2^19 paths to the one field they select
DOUBLING = "{ case(id: 3) { ...F19 } } fragment F0 on Case { caseId name } " + " ".join(
    f"fragment F{i} on Case {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 20)
)


def plan_of(query: str, variables: dict[str, Any] | None = None, name: str | None = None) -> Any:
    plan, _ = document_for(query, 3000).plan(SCHEMA, name, variables)
    assert plan is not None
    return plan


def test_a_doubling_fragment_query_is_walked_once_per_fragment():
    plan = plan_of(DOUBLING)
    document = document_for(DOUBLING, 3000)
    assert len(document.shape.memo) == 20  # each fragment's depth walked once
    [case] = plan.tree["Query"].values()
    assert sorted(case.children["Case"]) == ["caseId", "name"]  # 2^19 spreads merged into two fields
    assert len(case.children["Case"]["caseId"].nodes) == 1
    assert (plan.depth, plan.aliases, plan.cost({}, Limits())) == (2, 0, 1)
    assert check(plan, {}, Limits()) == []


def test_the_doubling_query_is_answered_over_http(gateway, calls):
    answer = gateway.query(DOUBLING)
    assert answer["data"] == {"case": {"caseId": 3, "name": answer["data"]["case"]["name"]}}
    assert isinstance(answer["data"]["case"]["name"], str)
    assert len(calls.requests()) == 1


def test_a_field_explosion_through_nested_fragments_is_refused_by_size():
    # each level doubles the merged tree (a and b both spread the level below): 2^14 fields at depth 14
    levels = 14
    fragments = ["fragment L0 on Case { caseId }"] + [
        f"fragment L{i} on Case {{ a: linkedCases {{ ...L{i - 1} }} b: linkedCases {{ ...L{i - 1} }} }}"
        for i in range(1, levels + 1)
    ]
    query = f"{{ case(id: 1) {{ ...L{levels} }} }} " + " ".join(fragments)
    plan = plan_of(query)
    codes = [e.extensions["code"] for e in check(plan, {}, Limits(max_depth=100, max_aliases=100))]
    assert codes == ["QUERY_TOO_COMPLEX"]


def test_aliases_inside_introspection_count():
    aliases = " ".join(f"t{i}: types {{ name }}" for i in range(31))
    plan = plan_of(f"{{ __schema {{ {aliases} }} }}")
    [error] = check(plan, {}, Limits())
    assert error.extensions["code"] == "TOO_MANY_ALIASES"
    assert "31 aliased fields" in error.message


def test_plans_are_reused_per_operation_and_switch_values():
    query = "query Q($on: Boolean!) { cases(perPage: 2) { items { caseId name @include(if: $on) } } }"
    document = document_for(query, 3000)
    first, reused = document.plan(SCHEMA, "Q", {"on": True})
    assert not reused
    again, reused = document.plan(SCHEMA, "Q", {"on": True, "unrelated": 5})
    assert reused and again is first
    other, reused = document.plan(SCHEMA, "Q", {"on": False})
    assert not reused and other is not first
    assert document.plan(SCHEMA, "Nope", {})[0] is None
    assert document_for(query, 3000) is document  # parsed once, kept in the documents' cache
    assert DOCUMENTS.maxsize == 512


def test_the_operation_comes_from_the_same_parse(monkeypatch):
    parses: list[str] = []
    real = graphql.parse

    def counting(source: Any, **kwargs: Any) -> Any:
        parses.append(source)
        return real(source, **kwargs)

    monkeypatch.setattr("gateway.planning.documents.parse", counting)
    query = "query Mine { cases(perPage: 1) { items { caseId } } } # a text no other test sends"
    assert operation_of(query, None, 3000).name == "Mine"
    assert operation_of(query, "Mine", 3000).kind == "query"
    plan_of(query, name="Mine")
    assert parses == [query]
    assert operation_of(query, "Other", 3000).kind is None
    assert operation_of("{", None, 3000).parsed is False


@pytest.mark.parametrize(
    ("query", "variables", "reaches"),
    [
        ("{ legacyCases { items { case { caseId } } } }", {}, True),
        ("{ l: legacyCases { items { ...F } } } fragment F on LegacyCase { case { caseId } }", {}, True),
        (
            "query($x: Boolean!) { legacyCases { items { case @include(if: $x) { caseId } } } }",
            {"x": False},
            False,
        ),
        (
            "query($x: Boolean!) { legacyCases { items { case @skip(if: $x) { caseId } } } }",
            {"x": False},
            True,
        ),
        ("{ legacyCases { items { caseNumber } } }", {}, False),
    ],
)
def test_the_lookahead_honours_fragments_and_switches(query, variables, reaches):
    plan = plan_of(query, variables)
    [key] = [k for under in plan.tree.values() for k in under]
    assert plan.reaches(key, "items", "case") is reaches


def test_the_fan_out_fetches_its_v2_cases_in_one_call(gateway, calls):
    query = "{ legacyCases(perPage: 20) { items { legacyId case { caseId name status priority } } } }"
    answer = gateway.query(query)
    paths = [request["path"] for request in calls.requests()]
    assert paths == ["/api/v1/cases", "/api/v2/cases"]
    items = answer["data"]["legacyCases"]["items"]
    assert len(items) == 20 and sum(item["case"] is not None for item in items) >= 15
