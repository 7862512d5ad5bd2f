"""The reference's own sample response goes through the gateway unchanged, field for field."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx

from gateway.http.app import create_app
from gateway.ops.config import load_settings
from tests.schema_walk import expected, selection, upstream_keys

SAMPLE = json.loads((Path(__file__).parent / "data" / "v2_sample_response.json").read_text())
UPSTREAM = "http://upstream.test"


@pytest.fixture
async def client():
    app = create_app(load_settings(v1_url=UPSTREAM, v2_url=UPSTREAM))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        yield c
    await app.state.services.aclose()


def test_schema_has_every_documented_case_field():
    assert set(SAMPLE["cases"][0]) == upstream_keys("Case")


@pytest.mark.usefixtures("httpx_upstream_transport")
@respx.mock
async def test_sample_case_round_trips(client):
    route = respx.get(f"{UPSTREAM}/api/v2/cases").mock(return_value=httpx.Response(200, json=SAMPLE))
    query = "{ cases { items %s pageInfo { page perPage pages count hasNextPage hasPreviousPage } } }"
    answer = (await client.post("/graphql", json={"query": query % selection("Case")})).json()
    assert "errors" not in answer
    assert answer["data"]["cases"]["items"] == expected("Case", SAMPLE["cases"])
    assert answer["data"]["cases"]["pageInfo"] == {
        "page": 1,
        "perPage": 20,
        "pages": 1,
        "count": 1,
        "hasNextPage": False,
        "hasPreviousPage": False,
    }
    assert route.call_count == 1


@pytest.mark.usefixtures("httpx_upstream_transport")
@respx.mock
async def test_derived_sla_status(client):
    respx.get(f"{UPSTREAM}/api/v2/cases").mock(return_value=httpx.Response(200, json=SAMPLE))
    answer = (
        await client.post(
            "/graphql",
            json={"query": "{ cases { items { sla { status } slas { status percentElapsed } } } }"},
        )
    ).json()
    case = answer["data"]["cases"]["items"][0]
    assert case["sla"] == {"status": "OK"}
    assert case["slas"] == [
        {"status": "OK", "percentElapsed": 0},
        {"status": "EXCEEDED", "percentElapsed": 100},
    ]
