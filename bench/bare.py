"""The floor of a request that does nothing: a bare Starlette endpoint under uvicorn that reads the body and
answers fixed JSON (the gateway's answer to `{ __typename }`). `bench/plan.py` measures the gateway's CPU per request for
`{ __typename }` against it, on the same uvicorn, in turns.

    uvicorn bench.bare:app --port 8001
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# the gateway's own answer to `{ __typename }`, byte for byte
ANSWER = (
    b'{"data":{"__typename":"Query"},"extensions":{"upstream":{"calls":0,"sharedCalls":0,"cacheHits":0}}}'
)


async def graphql(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)])
