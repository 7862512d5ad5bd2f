"""`GET /readyz`: can this gateway answer queries now? 200 when every check passes, else 503; the JSON body
says what each check found.

- **Upstreams** (v1 and v2): one cheap listing, `GET /api/v2/cases?per_page=1` and `GET /api/v1/cases?per_page=1`.
  With `AUTH_MODE=token` it carries the configured token and must answer 200 (the token works). With
  `AUTH_MODE=passthrough` the gateway holds no credential of its own, so the request goes without one and
  any answer below 500 (a 401 included) proves the upstream reachable and serving.
- **Redis**, when `CACHE_URL` names one: a `PING`, within `CACHE_TIMEOUT`.

Each check is bounded by `READY_TIMEOUT` seconds, and a result is reused for `READY_CACHE_SECONDS`, so load
balancers polling many replicas do not multiply into upstream traffic. The checks use their own short-lived
connections: they do not count in the upstream metrics, the cache or the circuit breakers.

`GET /healthz` stays the liveness check: it never calls anything.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.http.services import Services
from gateway.upstream.credentials import credential_for

READY_CACHE_SECONDS = 1.0


async def _check_upstream(client: httpx.AsyncClient, url: str, token_mode: bool) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        response = await client.get(url, params={"per_page": 1})
    except httpx.TimeoutException:
        return {"ok": False, "error": "timeout"}
    except httpx.HTTPError as exc:
        return {"ok": False, "error": type(exc).__name__}
    status = response.status_code
    ok = status == 200 if token_mode else status < 500
    result: dict[str, Any] = {
        "ok": ok,
        "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if not ok:
        result["error"] = "the configured token was refused" if status in (401, 403) else f"HTTP {status}"
    return result


async def _check_redis(services: Services, timeout: float) -> dict[str, Any]:
    client = getattr(services.cache.backend, "client", None)
    if client is None:
        return {"ok": False, "error": "no Redis client"}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            await client.ping()
    except TimeoutError:
        return {"ok": False, "error": "timeout"}
    except Exception as exc:  # connection refused, auth failure...: the class name says which
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


async def check(services: Services) -> dict[str, Any]:
    settings = services.settings
    token_mode = settings.auth_mode == "token"
    credential = credential_for(settings, None)
    headers = {"Accept": "application/json"}
    if token_mode and credential.header:
        headers["Authorization"] = credential.header
    timeout = settings.ready_timeout
    checks: dict[str, Any] = {}
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(timeout), headers=headers, follow_redirects=False
    ) as client:
        targets = {
            "v2": f"{settings.v2_base}/api/v2/cases",
            "v1": f"{settings.v1_base}/api/v1/cases",
        }
        names = list(targets)
        jobs = [_check_upstream(client, targets[name], token_mode) for name in names]
        if services.cache.shared:
            names.append("redis")
            jobs.append(_check_redis(services, min(timeout, settings.cache_timeout * 4)))
        for name, result in zip(names, await asyncio.gather(*jobs), strict=True):
            checks[name] = result
    failed = [name for name, result in checks.items() if not result["ok"]]
    return {"ready": not failed, "failed": failed, "checks": checks}


class Readiness:
    """The /readyz endpoint, remembering its last result for a moment."""

    def __init__(self) -> None:
        self._last: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def endpoint(self, request: Request) -> Response:
        services: Services = request.app.state.services
        async with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= READY_CACHE_SECONDS:
                self._last = (now, await check(services))
            result = self._last[1]
        return JSONResponse(result, status_code=200 if result["ready"] else 503)
