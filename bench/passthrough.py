"""The floor a gateway is measured against: the same upstream GETs, with nothing done to their answers.

A Starlette app under uvicorn. `POST /graphql` looks its body up in PASSTHROUGH_ROUTES (a JSON file: request
body -> the upstream paths with query strings that the gateway's answer to it needed, recorded by
`bench/plan.py`), GETs them in turn from PASSTHROUGH_UPSTREAM with one pooled `httpx.AsyncClient` and the
demo token, and answers their bodies joined, unparsed.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROUTES: dict[bytes, list[str]] = {
    body.encode(): paths
    for body, paths in json.loads(Path(os.environ["PASSTHROUGH_ROUTES"]).read_text()).items()
}
UPSTREAM = os.environ["PASSTHROUGH_UPSTREAM"]
client: dict[str, httpx.AsyncClient] = {}


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    client["http"] = httpx.AsyncClient(base_url=UPSTREAM, headers={"Authorization": "Bearer demo-token"})
    yield
    await client["http"].aclose()


async def graphql(request: Request) -> Response:
    bodies = [(await client["http"].get(path)).content for path in ROUTES[await request.body()]]
    return Response(b"".join(bodies), media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)], lifespan=lifespan
)
