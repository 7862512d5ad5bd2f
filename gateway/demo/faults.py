"""Fault injection for the demo upstream: tests and the soak script make it misbehave on purpose.

    POST   /_demo/faults   {rule}   add a rule (answers {"id": n, "rules": [...]})
    GET    /_demo/faults            the rules, each with how often it has fired
    DELETE /_demo/faults            remove every rule

A rule (every key optional):

    paths       glob patterns (fnmatch) of the /api paths it applies to; default every /api path
    times       apply to the next N matching requests only, then expire (deterministic: "fail the next N")
    error_rate  apply to this fraction of matching requests, drawn from a generator seeded with `seed`
                (default 0): the same sequence of requests meets the same faults on every run
    latency_ms  wait this long before answering (alone: the request is then served normally)
    headers     headers added to the answer: to a failure's, or alone to the normal answer (a load
                balancer's or a session's Set-Cookie, say)
    rewrite     {"<path>": value, ...}: the normal answer, with each path's value replaced by `value` (an
                upstream answering the wrong shape); a path is keys and list indexes joined by dots, `*` for
                every item: {"cases.0.created_at": "not a date", "cases.*.tags": "x", "meta.per_page": "abc"}
    body        a string: the normal answer's status and headers with this body instead, byte for byte (what
                no JSON encoder writes: a value nested 2,000 deep, a number past 64 bits, broken JSON)
    and at most one failure:
    status      answer this HTTP status, body {"error": <`error`, default "injected fault">} (with
                `headers`, a 302 with a Location, say)
    rate_limit  {"retry_after": s}: 429 with `Retry-After: s`
    malformed   200 with a body that is not JSON
    truncated   200 with JSON cut off half way (its Content-Length matches the bytes sent)
    reset       response headers promising a body, then the connection closed with none of it
    huge_body   200 whose body streams on and on (true: 64 MiB; or a number of bytes), no Content-Length

Rules are tried in the order they were added; the first that applies to a request decides it. A faulted
request is written to the request log (`/_demo/requests`) with `"fault": <kind>`, so tests count the
attempts the gateway made; a latency-only rule leaves the logging to the normal handler.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KINDS = ("status", "rate_limit", "malformed", "truncated", "reset", "huge_body")
MODIFIERS = ("headers", "rewrite", "body")  # what a rule without a failure does to the normal answer
HUGE_DEFAULT = 64 * 1024 * 1024
CHUNK = 64 * 1024


class InjectedReset(Exception):
    """Raised after the response has started, so the server drops the connection mid-answer."""


class _QuietInjectedResets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedReset))


@dataclass
class Rule:
    id: int
    spec: dict[str, Any]
    paths: list[str]
    kind: str | None
    times: int | None
    error_rate: float | None
    latency_ms: float
    rng: random.Random = field(repr=False)
    fired: int = 0

    def applies(self, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if not any(fnmatch.fnmatchcase(path, pattern) for pattern in self.paths):
            return False
        if self.error_rate is not None and self.rng.random() >= self.error_rate:
            return False
        if self.times is not None:
            self.times -= 1
        self.fired += 1
        return True

    def report(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec, "fired": self.fired, "remaining": self.times}


def parse_rule(rule_id: int, spec: Any) -> Rule:
    """A rule from its JSON, or ValueError saying what is wrong with it."""
    if not isinstance(spec, dict):
        raise ValueError("a fault rule is a JSON object")
    unknown = set(spec) - {*KINDS, *MODIFIERS, "paths", "times", "error_rate", "seed", "latency_ms", "error"}
    if unknown:
        raise ValueError(f"unknown keys: {sorted(unknown)}")
    kinds = [kind for kind in KINDS if spec.get(kind) not in (None, False)]
    if len(kinds) > 1:
        raise ValueError(f"one failure per rule, got {kinds}")
    paths = spec.get("paths") or ["/api/*"]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ValueError("paths must be a list of glob patterns")
    times = spec.get("times")
    if times is not None and (not isinstance(times, int) or times < 0):
        raise ValueError("times must be a non-negative integer")
    rate = spec.get("error_rate")
    if rate is not None and not (isinstance(rate, int | float) and 0 <= rate <= 1):
        raise ValueError("error_rate must be between 0 and 1")
    latency = spec.get("latency_ms", 0)
    if not isinstance(latency, int | float) or not 0 <= latency <= 600_000:
        raise ValueError("latency_ms must be between 0 and 600000")
    headers = spec.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    ):
        raise ValueError("headers must be an object of strings")
    rewrite = spec.get("rewrite")
    if rewrite is not None and not (isinstance(rewrite, dict) and rewrite):
        raise ValueError("rewrite must be an object of paths and values")
    if rewrite is not None and kinds:
        raise ValueError("rewrite changes the normal answer: no failure beside it")
    body = spec.get("body")
    if body is not None and (not isinstance(body, str) or kinds or rewrite is not None):
        raise ValueError(
            "body is a string replacing the normal answer's body: no failure or rewrite beside it"
        )
    if not kinds and not latency and not headers and not rewrite and body is None:
        raise ValueError(f"a rule needs latency_ms, headers, rewrite, body or one of {list(KINDS)}")
    if "status" in kinds and not (isinstance(spec["status"], int) and 200 <= spec["status"] <= 599):
        raise ValueError("status must be an HTTP status")
    return Rule(
        id=rule_id,
        spec=spec,
        paths=paths,
        kind=kinds[0] if kinds else None,
        times=times,
        error_rate=rate,
        latency_ms=float(latency),
        rng=random.Random(spec.get("seed", 0)),
    )


def _json(body: Any, status: int = 200) -> Response:
    # the standard library's encoder: a rule may hold a value nested deeper than orjson encodes (254)
    return Response(json.dumps(body, separators=(",", ":")), status, media_type="application/json")


class Faults:
    """The active rules, shared by the middleware and the /_demo/faults routes."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._next_id = 1

    def add(self, spec: Any) -> Rule:
        rule = parse_rule(self._next_id, spec)
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, path: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.applies(path)), None)

    def report(self) -> list[dict[str, Any]]:
        return [rule.report() for rule in self.rules]

    def routes(self) -> list[Route]:
        async def add(request: Request) -> Response:
            try:
                rule = self.add(orjson.loads(await request.body()))
            except (ValueError, orjson.JSONDecodeError) as exc:
                return _json({"error": str(exc)}, 400)
            return _json({"id": rule.id, "rules": self.report()})

        async def show(request: Request) -> Response:
            return _json({"rules": self.report()})

        async def clear(request: Request) -> Response:
            self.clear()
            return _json({"ok": True})

        return [
            Route("/_demo/faults", add, methods=["POST"]),
            Route("/_demo/faults", show, methods=["GET"]),
            Route("/_demo/faults", clear, methods=["DELETE"]),
        ]


class FaultInjection:
    """ASGI middleware: /api requests a rule applies to get that rule's fault instead of (or before) their
    normal answer."""

    def __init__(self, app: ASGIApp, faults: Faults, log: Any) -> None:
        self.app = app
        self.faults = faults
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        rule = self.faults.pick(scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.kind is None:
            sender = _adding_headers(send, _headers(rule))
            if "rewrite" in rule.spec or "body" in rule.spec:
                await _rewriting(
                    self.app, scope, receive, sender, rule.spec.get("rewrite"), rule.spec.get("body")
                )
            else:
                await self.app(scope, receive, sender)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        status = {"status": rule.spec.get("status"), "rate_limit": 429}.get(rule.kind, 200)
        self.log.add(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": query,
                "params": {name: values for name, values in parse_qs(query).items()},
                "status": status,
                "fault": rule.kind,
                "authorized_as": None,  # a fault answers before any authentication
                "request_id": dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1") or None,
            }
        )
        await FAULT_ANSWERS[rule.kind](rule, send)


async def _start(send: Send, status: int, headers: dict[str, str]) -> None:
    message: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await send(message)


async def _whole(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    await _start(
        send,
        status,
        {"content-type": "application/json", "content-length": str(len(body)), **(headers or {})},
    )
    await send({"type": "http.response.body", "body": body})


def _headers(rule: Rule) -> dict[str, str]:
    return {str(k): str(v) for k, v in (rule.spec.get("headers") or {}).items()}


def _adding_headers(send: Send, headers: dict[str, str]) -> Send:
    """`send`, with `headers` added to the response's start."""
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sender


async def _rewriting(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, rewrite: dict[str, Any] | None, raw: str | None
) -> None:
    """The normal answer, its JSON rewritten or its body replaced by `raw` (a 200's; any other answer goes as
    it is)."""
    start: Message = {}
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    body = b"".join(chunks)
    if start.get("status") == 200 and raw is not None:
        body = raw.encode()
    elif start.get("status") == 200 and rewrite:
        data = orjson.loads(body)
        for path, value in rewrite.items():
            set_at(data, path.split("."), value)
        body = json.dumps(data, separators=(",", ":")).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def set_at(data: Any, path: list[str], value: Any) -> None:
    """Put `value` at `path` in `data` (where the path exists): keys, list indexes, `*` for every item."""

    def children(node: Any, step: str) -> list[Any]:
        if step == "*":
            return list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
        if isinstance(node, list):
            return [node[int(step)]] if step.isdigit() and int(step) < len(node) else []
        return [node[step]] if isinstance(node, dict) and step in node else []

    *parents, last = path
    nodes = [data]
    for step in parents:
        nodes = [child for node in nodes for child in children(node, step)]
    for node in nodes:
        if isinstance(node, dict) and last == "*":
            node.update(dict.fromkeys(node, value))
        elif isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list) and last == "*":
            node[:] = [value] * len(node)
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value


async def _status(rule: Rule, send: Send) -> None:
    await _whole(
        send,
        rule.spec["status"],
        orjson.dumps({"error": str(rule.spec.get("error", "injected fault"))}),
        _headers(rule),
    )


async def _rate_limit(rule: Rule, send: Send) -> None:
    spec = rule.spec["rate_limit"]
    retry_after = spec.get("retry_after", 1) if isinstance(spec, dict) else 1
    body = orjson.dumps({"error": "Rate limit exceeded"})
    await _whole(send, 429, body, {"retry-after": str(retry_after)})


async def _malformed(rule: Rule, send: Send) -> None:
    await _whole(send, 200, b"<html><body>502 Bad Gateway</body></html>")


async def _truncated(rule: Rule, send: Send) -> None:
    await _whole(send, 200, b'{"cases": [{"case_id": 1, "name": "Suspicious log')


async def _reset(rule: Rule, send: Send) -> None:
    await _start(send, 200, {"content-type": "application/json", "content-length": "4096"})
    raise InjectedReset("injected connection reset")


async def _huge_body(rule: Rule, send: Send) -> None:
    size = rule.spec["huge_body"]
    size = HUGE_DEFAULT if size is True or not isinstance(size, int) else size
    await _start(send, 200, {"content-type": "application/json"})
    await send({"type": "http.response.body", "body": b'{"cases": [', "more_body": True})
    chunk = b" " * CHUNK
    sent = 0
    while sent < size:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        sent += len(chunk)
    await send({"type": "http.response.body", "body": b"]}"})


FAULT_ANSWERS = {
    "status": _status,
    "rate_limit": _rate_limit,
    "malformed": _malformed,
    "truncated": _truncated,
    "reset": _reset,
    "huge_body": _huge_body,
}


def install(app: Starlette, log: Any) -> Faults:
    """Add the /_demo/faults routes and the fault middleware to the demo app."""
    faults = Faults()
    app.router.routes.extend(faults.routes())
    app.add_middleware(FaultInjection, faults=faults, log=log)
    logging.getLogger("uvicorn.error").addFilter(_QuietInjectedResets())
    app.state.faults = faults
    return faults
