"""Normalized client caches show the upstream's values. Apollo Client's InMemoryCache and urql's graphcache
(tests/node/caches.mjs, one cache each for every list) page through every v2 case selecting every plain field
(`blocks` among them), every v1 case selecting every plain field (the client, location, region, status,
contact, people and subject records among them), and one user's and one tag's cases through the root
connection's filter, as docs/frontend.md says; then they read each list back from their cache. What each
shows equals the upstream's values, field by field, and one user's or tag's list is the one the nested
connection starts (`make test` installs the clients with `npm ci` in tests/node)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from gateway.planning.executable import schema
from gateway.schema.node import global_id
from tests.normalized import with_keys
from tests.schema_walk import expected, selection
from tests.support import DEMO_TOKEN
from tests.test_relay_client import NODE, NODE_DIR

pytestmark = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "@urql" / "exchange-graphcache").is_dir(),
    reason="node or tests/node/node_modules is missing (`make test` runs `npm ci` in tests/node)",
)

USER, TAG = "168", "phishing"  # the demo token's own user (on about a third of the cases), a tag
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"


def connection_query(name: str, field: str, arguments: list[str], node: str) -> str:
    """A connection query taking $first and $after, selecting `id` wherever the type has one (as frontends
    do for their caches)."""
    variables = "".join(f", ${a.split(':')[0].strip()}: {a.split(':')[1].strip()}" for a in arguments if a)
    passed = "".join(f", {a.split(':')[0].strip()}: ${a.split(':')[0].strip()}" for a in arguments if a)
    return with_keys(
        schema._schema,
        f"query {name}($first: Int, $after: String{variables}) {{ {field}(first: $first, after: $after{passed}) "
        f"{{ totalCount edges {{ cursor node {node} }} {PAGE_INFO} }} }}",
    )


LISTS = [
    {
        "name": "v2",
        "field": "casesConnection",
        "query": connection_query("AllCases", "casesConnection", [], "{ id %s" % selection("Case")[1:]),
        "size": 50,
        "variables": {},
    },
    {
        "name": "v1",
        "field": "legacyCasesConnection",
        "query": connection_query(
            "AllLegacyCases", "legacyCasesConnection", [], "{ id legacyId %s" % selection("LegacyCase")[1:]
        ),
        "size": 45,
        "variables": {},
    },
    *(
        {
            "name": name,
            "field": "casesConnection",
            "query": connection_query(
                f"One{name.title()}Cases",
                "casesConnection",
                ["filter: CaseFilter"],
                "{ id caseId name assignees { userId email } tags { id name } }",
            ),
            "size": 7,
            "variables": {"filter": filter_},
        }
        for name, filter_ in (("user", {"andAssignees": [USER]}), ("tag", {"andTags": [TAG]}))
    ),
]


def listing(upstream: Any, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every case of an upstream listing, in its order."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        items = upstream.get(path, page=page, per_page=50, **params).json()
        items = items["cases"] if isinstance(items, dict) else items
        out += items
        if len(items) < 50:
            return out
        page += 1


def strip_keys(value: Any) -> Any:
    """What a client shows, without the `__typename`s and the users' `id` (their `userId`) the upstream values
    do not carry."""
    if isinstance(value, list):
        return [strip_keys(item) for item in value]
    if isinstance(value, dict):
        drop = {"__typename"}
        if value.get("__typename") == "Assignee":
            assert value["id"] == value["userId"]
            drop.add("id")
        return {k: strip_keys(v) for k, v in value.items() if k not in drop}
    return value


def test_normalized_caches_show_the_upstream_values(gateway, upstream):
    run = subprocess.run(
        [NODE, "caches.mjs", f"{gateway.url}/graphql"],  # type: ignore[list-item]
        cwd=NODE_DIR,
        input=json.dumps({"lists": LISTS}).encode(),
        env={**os.environ, "CASEGRAPH_TOKEN": DEMO_TOKEN},
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    answer = json.loads(run.stdout)

    v2 = listing(upstream, "/api/v2/cases")
    v1 = listing(upstream, "/api/v1/cases")
    by_user = listing(upstream, "/api/v2/cases", filters=json.dumps({"and_assignees": [USER]}))
    by_tag = listing(upstream, "/api/v2/cases", filters=json.dumps({"and_tags": [TAG]}))
    assert (len(v2), len(v1)) == (300, 303) and 50 < len(by_user) < 200 and 20 < len(by_tag) < 200
    want = {
        "v2": [{"id": global_id("Case", case["case_id"]), **expected("Case", case)} for case in v2],
        "v1": [
            {
                "id": global_id("LegacyCase", case["id"]),
                "legacyId": case["id"],
                **expected("LegacyCase", case),
            }
            for case in v1
        ],
        **{
            name: [
                {
                    "id": global_id("Case", case["case_id"]),
                    "caseId": case["case_id"],
                    "name": case["name"],
                    "assignees": [{"userId": a["user_id"], "email": a["email"]} for a in case["assignees"]],
                    "tags": [{"id": t["id"], "name": t["name"]} for t in case["tags"]],
                }
                for case in cases
            ]
            for name, cases in (("user", by_user), ("tag", by_tag))
        },
    }
    for client in ("apollo", "urql"):
        shown = strip_keys(answer[client]["shown"])
        for name, cases in want.items():
            assert len(shown[name]) == len(cases), (client, name)
            for got, case in zip(shown[name], cases, strict=True):
                assert got == case, (client, name, case["id"])
        sizes = {entry["name"]: entry["size"] for entry in LISTS}
        assert answer[client]["requests"] == {
            name: -(-len(cases) // sizes[name]) for name, cases in want.items()
        }

    # the nested connections start the same lists: their first window is the root connection's first
    first = gateway.query(
        '{ a: casesConnection(filter: {andAssignees: ["%s"]}, first: 1) { edges { node { tags { name } '
        "assignees { userId casesConnection(first: 7) { edges { node { caseId } } } } } } } }" % USER
    )
    assert "errors" not in first, first
    node = first["data"]["a"]["edges"][0]["node"]
    user = next(a for a in node["assignees"] if a["userId"] == USER)
    assert [e["node"]["caseId"] for e in user["casesConnection"]["edges"]] == [
        c["case_id"] for c in by_user[:7]
    ]
