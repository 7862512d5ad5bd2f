"""The demo upstream as an ASGI app: v1 and v2 under /api, and /_demo for the tests.

Every /api request needs `Authorization: Bearer <demo token>` (401 otherwise) and is written to the
request log, which `GET /_demo/requests` returns and `DELETE /_demo/requests` empties: that log is how
tests and benchmarks count upstream calls.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.demo import faults
from gateway.demo.data import DemoData, TokenGrant, generate
from gateway.demo.v1 import V1Demo
from gateway.demo.v2 import DemoError, V2Demo, is_number

LOG_LIMIT = 100_000  # requests kept in the log; `count` keeps counting past it
ANSWERS_KEPT = 4096  # encoded successful answers kept (see `api`)

Handler = Callable[[Request, dict[str, list[str]], TokenGrant], tuple[Any, dict[str, str]]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


class RequestLog:
    def __init__(self) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.count = 0

    def add(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self.count += 1

    def clear(self) -> None:
        self.entries.clear()
        self.count = 0


def _case_id(request: Request) -> int:
    text = request.path_params["case_id"]
    if not is_number(text) or int(text) < 1:
        raise DemoError(400, f"case_id must be a positive integer, got {text!r}")
    return int(text)


def create_app(seed: int = 7, data: DemoData | None = None) -> Starlette:
    data = data or generate(seed)
    v1, v2 = V1Demo(data), V2Demo(data)
    log = RequestLog()

    answers: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}

    def api(handler: Handler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            params: dict[str, list[str]] = {}
            for name, value in request.query_params.multi_items():
                params.setdefault(name, []).append(value)
            auth = request.headers.get("authorization", "")
            grant = data.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            headers: dict[str, str] = {}
            # The data never changes: a successful answer is encoded once per URL and token, so the demo
            # costs little CPU beside a gateway under load (benchmarks share the machine). The key holds the
            # whole URL, scheme and host included: answers carry absolute URLs built from them.
            memo_key = (str(request.url), auth)
            encoded = answers.get(memo_key)
            try:
                if grant is None:
                    raise DemoError(401, "A valid Authorization: Bearer token is required")
                if encoded is None:
                    body, headers = handler(request, params, grant)
                    if len(answers) >= ANSWERS_KEPT:
                        answers.clear()
                    encoded = answers[memo_key] = (orjson.dumps(body), headers)
                status = 200
            except DemoError as exc:
                body, status, encoded = {"error": exc.message}, exc.status, None
            log.add(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": request.url.query,
                    "params": params,
                    "status": status,
                    "authorized_as": grant.user_id if grant else None,
                    "request_id": request.headers.get("x-request-id"),  # the gateway's, passed on
                    "cookie": request.headers.get("cookie"),  # the gateway sends none (test_credentials)
                    "traceparent": request.headers.get("traceparent"),  # W3C trace context (test_tracing)
                    "tracestate": request.headers.get("tracestate"),
                }
            )
            if encoded is not None:
                return Response(encoded[0], 200, encoded[1], media_type="application/json")
            return json_response(body, status, headers)

        return endpoint

    def base(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    def v2_list(
        request: Request, params: dict[str, list[str]], grant: TokenGrant
    ) -> tuple[Any, dict[str, str]]:
        return v2.list_cases(params, grant, base(request)), {}

    def v2_case(
        request: Request, params: dict[str, list[str]], grant: TokenGrant
    ) -> tuple[Any, dict[str, str]]:
        return v2.get_case(_case_id(request), params, grant, base(request)), {}

    def v2_activities(
        request: Request, params: dict[str, list[str]], grant: TokenGrant
    ) -> tuple[Any, dict[str, str]]:
        return v2.activities(_case_id(request), params, grant, base(request)), {}

    def v2_records(
        request: Request, params: dict[str, list[str]], grant: TokenGrant
    ) -> tuple[Any, dict[str, str]]:
        return v2.records(_case_id(request), params, grant, base(request)), {}

    def v1_list(
        request: Request, params: dict[str, list[str]], grant: TokenGrant
    ) -> tuple[Any, dict[str, str]]:
        return v1.list_cases(params)

    def v1_case(
        request: Request, params: dict[str, list[str]], grant: TokenGrant
    ) -> tuple[Any, dict[str, str]]:
        return v1.get_case(_case_id(request), params), {}

    def not_found(
        request: Request, params: dict[str, list[str]], grant: TokenGrant
    ) -> tuple[Any, dict[str, str]]:
        raise DemoError(404, f"No route for {request.url.path}")

    async def requests(request: Request) -> Response:
        return json_response({"count": log.count, "requests": list(log.entries)})

    async def clear(request: Request) -> Response:
        log.clear()
        return json_response({"ok": True})

    async def healthz(request: Request) -> Response:
        return json_response({"ok": True, "v2_cases": len(data.cases), "v1_cases": len(data.legacy)})

    routes = [
        Route("/api/v2/cases", api(v2_list)),
        Route("/api/v2/cases/{case_id}", api(v2_case)),
        Route("/api/v2/cases/{case_id}/activities", api(v2_activities)),
        Route("/api/v2/cases/{case_id}/records", api(v2_records)),
        Route("/api/v1/cases", api(v1_list)),
        Route("/api/v1/cases/{case_id}", api(v1_case)),
        Route("/api/{rest:path}", api(not_found)),
        Route("/_demo/requests", requests, methods=["GET"]),
        Route("/_demo/requests", clear, methods=["DELETE"]),
        Route("/_demo/healthz", healthz),
    ]
    app = Starlette(routes=routes)
    app.state.data = data
    app.state.log = log
    faults.install(app, log)  # /_demo/faults: injected latency, errors, resets, bad bodies (faults.py)
    return app
