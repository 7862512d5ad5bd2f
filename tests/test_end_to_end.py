"""The gateway process against the demo upstream process, over real HTTP."""

from __future__ import annotations

from tests.schema_walk import expected, selection
from tests.support import AUTH


def test_every_field_of_every_case_equals_the_upstream_json(gateway, upstream):
    direct = upstream.get("/api/v2/cases", per_page=50, order="CREATED_ASC").json()
    answer = gateway.query("{ cases(perPage: 50, order: CREATED_ASC) { items %s } }" % selection("Case"))
    assert "errors" not in answer
    assert len(direct["cases"]) == 50
    assert answer["data"]["cases"]["items"] == expected("Case", direct["cases"])


def test_one_case_equals_the_upstream_json(gateway, upstream, calls):
    direct = upstream.get("/api/v2/cases/7").json()
    calls.reset()
    answer = gateway.query("{ case(id: 7) %s }" % selection("Case"))
    assert "errors" not in answer
    assert answer["data"] == {"case": expected("Case", direct)}
    assert answer["extensions"]["upstream"] == {"calls": 1, "sharedCalls": 0, "cacheHits": 0}
    assert [(r["method"], r["path"]) for r in calls.requests()] == [("GET", "/api/v2/cases/7")]


def test_every_field_of_legacy_cases_equals_the_upstream_json(gateway, upstream):
    direct = upstream.get("/api/v1/cases", per_page=100)
    answer = gateway.query(
        "{ legacyCases(perPage: 100) { items %s pageInfo { page perPage pages count } } }"
        % selection("LegacyCase")
    )
    assert "errors" not in answer
    assert answer["data"]["legacyCases"]["items"] == expected("LegacyCase", direct.json())
    assert answer["data"]["legacyCases"]["pageInfo"] == {
        "page": 1,
        "perPage": 100,
        "pages": int(direct.headers["X-Total-Pages"]),
        "count": int(direct.headers["X-Total-Count"]),
    }


def test_case_page_info(gateway, upstream):
    total = upstream.get("/api/v2/cases", per_page=1).json()["meta"]["count"]
    answer = gateway.query(
        "{ cases(page: 2, perPage: 7) { pageInfo { page perPage pages count hasNextPage hasPreviousPage } } }"
    )
    assert answer["data"]["cases"]["pageInfo"] == {
        "page": 2,
        "perPage": 7,
        "pages": -(-total // 7),
        "count": total,
        "hasNextPage": True,
        "hasPreviousPage": True,
    }


def test_unknown_case_is_null_with_not_found_and_the_rest_intact(gateway, calls):
    answer = gateway.query("{ a: case(id: 1) { caseId } b: case(id: 999999) { caseId } }")
    assert answer["data"] == {"a": {"caseId": 1}, "b": None}
    [error] = answer["errors"]
    assert error["path"] == ["b"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert len(calls.requests()) == 1  # both ids in one `case_ids` call


def test_bad_credentials_are_unauthenticated_and_never_echoed(gateway, calls):
    answer = gateway.query("{ case(id: 1) { caseId } }", headers={"Authorization": "Bearer s3cret-wrong"})
    assert answer["data"] == {"case": None}
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "s3cret" not in str(answer)
    assert "s3cret" not in gateway.process.log()


def test_missing_credentials_are_unauthenticated(gateway, calls):
    answer = gateway.query("{ cases { items { caseId } } }", headers={})
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert calls.requests()[0]["authorized_as"] is None


def test_get_request_runs_a_query(gateway):
    response = gateway.client.get("/graphql", params={"query": "{ case(id: 2) { caseId } }"}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["data"] == {"case": {"caseId": 2}}


def test_graphiql_is_served_to_browsers(gateway):
    response = gateway.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


def test_healthz(gateway):
    health = gateway.client.get("/healthz").json()
    cache = health.pop("cache")
    responses = health.pop("responses")
    upstreams = health.pop("upstreams")
    persisted = health.pop("persistedQueries")  # APQ: tests/test_graphql_http.py
    assert persisted["enabled"] is True
    trusted = health.pop("trustedDocuments")  # TRUSTED_DOCUMENTS: tests/test_trusted_documents.py
    assert trusted == {"documents": 0, "mode": "off", "source": None}
    assert health == {"ok": True}
    assert set(upstreams) == {"v1", "v2"}  # breaker states and retry counts: tests/test_resilience.py
    assert {u["breaker"]["state"] for u in upstreams.values()} == {"closed"}
    assert responses["enabled"] is False  # the test gateway runs with CACHE_TTL=0
    assert cache.pop("backend") == "memory"
    assert cache["errors"] == 0
    assert set(cache) == {"hits", "misses", "errors"}
    assert all(type(n) is int and n >= 0 for n in cache.values())  # exact counts: tests/test_cache.py


def test_serve_with_two_workers_answers_from_both(upstream, logs_dir, calls):
    """`casegraph serve --workers 2`: uvicorn worker processes, each built from the environment."""
    from tests.support import start_gateway, stop, wait_for

    gw = start_gateway(upstream.url, logs_dir / "workers.log", "--workers", "2", CACHE_TTL="0")
    process = gw.process
    try:
        answers = [gw.query("{ case(id: 3) { caseId } }") for _ in range(4)]
        assert all(a["data"] == {"case": {"caseId": 3}} for a in answers)
        assert len(calls.requests()) == 4
        started = "Application startup complete"  # the second worker may still be starting
        wait_for(lambda: process.log().count(started) >= 2, "both workers started", limit=15)
        assert process.log().count(started) == 2
    finally:
        stop(process)
