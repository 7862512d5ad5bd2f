"""Upstream failures become coded field errors, fast, with nothing internal leaked."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import pytest
import respx

from gateway.http.app import create_app
from gateway.ops.config import load_settings
from tests.support import free_port

UPSTREAM = "http://upstream.test"


async def ask(settings_overrides: dict, query: str) -> dict:
    app = create_app(load_settings(**settings_overrides))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            response = await client.post(
                "/graphql", json={"query": query}, headers={"Authorization": "Bearer tok-123"}
            )
            return response.json()
    finally:
        await app.state.services.aclose()


@pytest.fixture
def silent_upstream():
    """A server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


async def test_read_timeout_is_upstream_timeout_within_its_limit(silent_upstream):
    started = time.monotonic()
    answer = await ask({"v2_url": silent_upstream, "read_timeout": 0.3}, "{ case(id: 1) { caseId } }")
    assert time.monotonic() - started < 2
    assert answer["data"] == {"case": None}
    assert answer["errors"][0]["extensions"] == {"code": "UPSTREAM_TIMEOUT"}


async def test_unreachable_upstream_is_upstream_error():
    answer = await ask({"v2_url": f"http://127.0.0.1:{free_port()}"}, "{ case(id: 1) { caseId } }")
    assert answer["errors"][0]["extensions"] == {"code": "UPSTREAM_ERROR"}
    assert answer["errors"][0]["message"] == "The v2 upstream could not be reached."


@pytest.mark.usefixtures("httpx_upstream_transport")
@respx.mock
@pytest.mark.parametrize(
    ("response", "code"),
    [
        (httpx.Response(500, text="boom at /srv/app.py line 3"), "UPSTREAM_ERROR"),
        (httpx.Response(200, content=b'{"case_id": 1, "name": '), "UPSTREAM_BAD_RESPONSE"),
        (httpx.Response(200, json=["not", "a", "case"]), "UPSTREAM_BAD_RESPONSE"),
        (
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"}),
            "UPSTREAM_RATE_LIMITED",
        ),
        (httpx.Response(403, json={"error": "no"}), "FORBIDDEN"),
        (httpx.Response(404, json={"error": "Case not found"}), "NOT_FOUND"),
    ],
)
async def test_upstream_answers_map_to_codes(response, code):
    respx.get(f"{UPSTREAM}/api/v2/cases/1").mock(return_value=response)
    answer = await ask({"v2_url": UPSTREAM}, "{ case(id: 1) { caseId } }")
    assert answer["data"] == {"case": None}
    [error] = answer["errors"]
    assert error["extensions"]["code"] == code
    assert "boom" not in error["message"] and "tok-123" not in str(answer)


@pytest.mark.usefixtures("httpx_upstream_transport")
@respx.mock
async def test_an_upstream_failure_in_one_field_leaves_the_others():
    respx.get(f"{UPSTREAM}/api/v2/cases/1").mock(
        return_value=httpx.Response(200, json={"case_id": 1, "name": "one"})
    )
    respx.get(f"{UPSTREAM}/api/v1/cases/5").mock(return_value=httpx.Response(502))
    answer = await ask(
        {"v1_url": UPSTREAM, "v2_url": UPSTREAM}, "{ case(id: 1) { name } legacyCase(id: 5) { caseNumber } }"
    )
    assert answer["data"] == {"case": {"name": "one"}, "legacyCase": None}
    assert answer["errors"][0]["path"] == ["legacyCase"]
    assert answer["errors"][0]["extensions"] == {"code": "UPSTREAM_ERROR", "upstreamStatus": 502}


@pytest.mark.usefixtures("httpx_upstream_transport")
@respx.mock
async def test_an_upstream_value_the_schema_does_not_allow_is_the_upstreams_error():
    respx.get(f"{UPSTREAM}/api/v2/cases/1").mock(
        return_value=httpx.Response(200, json={"case_id": 1, "status": "HALF_OPEN"})
    )
    answer = await ask({"v2_url": UPSTREAM}, "{ case(id: 1) { caseId status } }")
    assert (
        answer["errors"][0]["message"] == "The upstream answered this field with a value of the wrong shape."
    )
    assert answer["errors"][0]["extensions"] == {"code": "UPSTREAM_BAD_RESPONSE"}
    assert answer["errors"][0]["path"] == ["case", "status"]
    assert "HALF_OPEN" not in str(answer)


@pytest.mark.usefixtures("httpx_upstream_transport")
@respx.mock
async def test_unexpected_errors_are_masked(monkeypatch, caplog):
    """A bug (here a resolver raising an exception of its own) is INTERNAL_SERVER_ERROR, its detail only in
    one log line."""

    def broken(case: dict, key: str) -> int:
        raise RuntimeError("a detail for the log only")

    monkeypatch.setattr("gateway.schema.case.v1_id_of", broken)
    respx.get(f"{UPSTREAM}/api/v2/cases/1").mock(
        return_value=httpx.Response(
            200, json={"case_id": 1, "status": "OPEN", "created_at": "2024-01-01T00:00:00Z"}
        )
    )
    answer = await ask({"v2_url": UPSTREAM}, "{ case(id: 1) { caseId legacyCase { caseNumber } } }")
    assert answer["data"] == {"case": {"caseId": 1, "legacyCase": None}}
    assert answer["errors"][0]["message"] == "Internal server error."
    assert answer["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "a detail" not in str(answer)
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is None  # one line, no traceback
    assert "RuntimeError: a detail for the log only at " in record.getMessage()


async def test_a_bug_in_the_endpoint_is_a_500_in_json_and_one_log_line(monkeypatch, caplog):
    def broken(*args: object) -> None:
        raise RuntimeError("a detail for the log only")

    monkeypatch.setattr("gateway.http.endpoint.operation_in", broken)
    caplog.set_level(logging.INFO, logger="gateway.requests")
    app = create_app(load_settings(v2_url=UPSTREAM))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            response = await client.post("/graphql", json={"query": "{ __typename }"})
    finally:
        await app.state.services.aclose()
    assert response.status_code == 500
    assert response.json() == {
        "errors": [{"message": "Internal server error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]
    }
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is None
    assert "RuntimeError: a detail for the log only at " in record.getMessage()
    [summary] = [r for r in caplog.records if r.name == "gateway.requests" and r.levelname == "INFO"]
    assert summary.fields["status"] == 500 and summary.fields["outcome"] == "error"
