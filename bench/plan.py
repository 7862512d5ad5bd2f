"""What the operation plans buy (issue 13), as ratios measured in one run.

    python -m bench.plan [--rounds 200] [--duration 4] [--turns 3] [--connections 4]

In process (no HTTP): a request's data path, upstream body bytes in, answer bytes out, for the 50-case query
(every copied field; and every zero-cost field, derived ones included) and the 20 legacy cases -> v2 fan-out, each round on a different upstream body:

- planned: the plan's decoders (only the keys read), the compiled projections, one encode;
- fully decoded: every key decoded (what the gateway did before plans), the same execution;
- floor: orjson.loads + orjson.dumps of the same bodies, nothing else.

The three run in turns (one round of each, repeated), so the VM's speed changes hit them alike; the medians
are compared. Peak Python allocation per request (tracemalloc) for planned and fully decoded.

Over HTTP (wrk, same connections): gateway CPU per request against a passthrough (`bench/passthrough.py`: a
small Starlette app under uvicorn making the same upstream GETs with a plain httpx.AsyncClient and returning
the bodies unparsed), both on the demo upstream with the cache off, in one run. Also over HTTP, in turns on one
gateway: the 50-case query of every zero-cost field against the copy-only one; and `{ __typename }` against a
bare Starlette endpoint (`bench/bare.py`) reading the body and answering fixed JSON on the same uvicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bare import ANSWER  # noqa: E402
from bench.run import (  # noqa: E402
    FAN_OUT_VARIANTS,
    FULL_50,
    FULL_50_VARIANTS,
    RESULTS,
    ZERO_COST_50,
    ZERO_COST_50_VARIANTS,
    cpu_seconds,
    machine,
    run_wrk,
)
from tests.support import AUTH, free_port, gateway_env, pids_of, start, start_upstream, stop  # noqa: E402

FAN_OUT_PAGE = FAN_OUT_VARIANTS[0].replace("page: 1", "page: %d")


@dataclass
class Recorded:
    """The upstream answers one query got: (api, path) -> (body bytes, headers)."""

    answers: dict[tuple[str, str], tuple[bytes, httpx.Headers]]


async def record(query: str) -> Recorded:
    """Run `query` once against the demo upstream in process, keeping each upstream answer's bytes."""
    from gateway.demo import create_app as create_demo
    from gateway.planning.context import RequestContext
    from gateway.planning.executable import schema
    from gateway.upstream.credentials import Caller, credential_for

    answers: dict[tuple[str, str], tuple[bytes, httpx.Headers]] = {}
    inner = httpx.ASGITransport(app=create_demo())

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            body = await response.aread()
            api = "v1" if "/api/v1/" in request.url.path else "v2"
            answers[(api, request.url.path)] = (body, response.headers)
            return httpx.Response(response.status_code, headers=response.headers, content=body)

    services = services_with(Recording())
    try:
        caller = Caller(credential_for(services.settings, "Bearer demo-token"))
        result = await schema.execute(query, context_value=RequestContext(services, caller))
        assert result.data, result.errors
    finally:
        await services.aclose()
    return Recorded(answers)


def services_with(transport: httpx.AsyncBaseTransport | None = None) -> Any:
    from gateway.http.services import Services
    from gateway.ops.config import load_settings
    from gateway.upstream.cache import UpstreamCache
    from gateway.upstream.http import UpstreamHTTP
    from gateway.upstream.v1 import V1API
    from gateway.upstream.v2 import V2API

    settings = load_settings(v1_url="http://u", v2_url="http://u", cache_ttl=0)
    cache = UpstreamCache(settings)
    http = UpstreamHTTP(settings, cache, transport=transport)
    return Services(settings, cache, http, V1API(http, settings.v1_base), V2API(http, settings.v2_base))


def data_path(query_for: Any, pages: int, rounds: int) -> dict[str, Any]:
    """Planned, fully decoded and floor, in turns over `pages` recorded upstream answers."""
    from gateway.http.answer import encode_answer
    from gateway.ops.tuning import tune_process
    from gateway.planning.context import RequestContext
    from gateway.planning.executable import schema
    from gateway.upstream.credentials import Caller, credential_for
    from gateway.upstream.decoding import FULL, Decoders
    from gateway.upstream.http import UpstreamResponse, decode_body

    recorded = [asyncio.run(record(query_for(page))) for page in range(1, pages + 1)]
    services = services_with()
    current: list[Recorded] = [recorded[0]]

    async def get_json(api: str, base: str, path: str, params: Any, caller: Any, decode: Any) -> Any:
        body, headers = current[0].answers[(api, path)]
        return UpstreamResponse(decode_body(api, path, body, decode), headers, 0.0)

    services.http.get_json = get_json  # type: ignore[method-assign]

    class FullyDecoded(RequestContext):
        @property
        def decoders(self) -> Decoders:
            return FULL

    async def one(kind: str, page: int) -> float:
        current[0] = recorded[page]
        query = query_for(page + 1)
        started = time.process_time()
        if kind == "floor":
            for body, _ in current[0].answers.values():
                orjson.dumps(orjson.loads(body))
        else:
            context = (RequestContext if kind == "planned" else FullyDecoded)(
                services, Caller(credential_for(services.settings, "Bearer demo-token"))
            )
            result = await schema.execute(query, context_value=context)
            body: dict[str, Any] = {"data": result.data}
            encode_answer(body)
            context.release()
        return (time.process_time() - started) * 1000

    async def peak(kind: str) -> float:
        current[0] = recorded[1 % pages]
        context = (RequestContext if kind == "planned" else FullyDecoded)(
            services, Caller(credential_for(services.settings, "Bearer demo-token"))
        )
        tracemalloc.start()
        result = await schema.execute(query_for(2 if pages > 1 else 1), context_value=context)
        encode_answer({"data": result.data})
        context.release()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top / 2**20

    async def run() -> dict[str, Any]:
        tune_process(services.settings.gc_threshold)
        times: dict[str, list[float]] = {"planned": [], "full": [], "floor": []}
        for kind in times:  # warm-up: documents planned, decoders and projections made
            for page in range(pages):
                await one(kind, page)
        for i in range(rounds):
            for kind in times:
                times[kind].append(await one(kind, i % pages))
        median = {kind: statistics.median(values) for kind, values in times.items()}
        return {
            "planned_ms": round(median["planned"], 2),
            "fully_decoded_ms": round(median["full"], 2),
            "floor_ms": round(median["floor"], 2),
            "planned_vs_floor": round(median["planned"] / median["floor"], 2),
            "fully_decoded_vs_floor": round(median["full"] / median["floor"], 2),
            "peak_alloc_planned_mib": round(await peak("planned"), 2),
            "peak_alloc_fully_decoded_mib": round(await peak("full"), 2),
            "upstream_kb": round(sum(len(b) for b, _ in recorded[0].answers.values()) / 1024),
        }

    return asyncio.run(run())


def gateway_for(upstream: str, logs: Path) -> Any:
    port = free_port()
    return start(
        ["serve", "--port", str(port)],
        port,
        logs / f"gateway-{port}.log",
        "/healthz",
        gateway_env(upstream, CACHE_TTL="0", LOG_LEVEL="warning"),
    )


def in_turns(runs: dict[str, tuple[Any, list[bytes]]], args: argparse.Namespace) -> dict[str, float]:
    """CPU ms per request of each (server, bodies) under the same wrk load, in turns, so that the machine's
    speed changes (2x within the hour here) hit them alike."""
    totals = {name: [0.0, 0] for name in runs}
    for server, bodies in runs.values():
        run_wrk(server.url, bodies, 2, args.connections, 1)  # warm-up
    for _ in range(args.turns):
        for name, (server, bodies) in runs.items():
            cpu, requests = cpu_and_requests(server, bodies, args)
            totals[name][0] += cpu
            totals[name][1] += requests
    return {name: round(cpu * 1000 / max(requests, 1), 3) for name, (cpu, requests) in totals.items()}


def server_ratio(upstream: str, logs: Path, queries: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Gateway CPU per request against the passthrough of the same upstream GETs, under the same load."""
    bodies = [json.dumps({"query": q}).encode() for q in queries]
    client = httpx.Client(timeout=60)
    gateway = gateway_for(upstream, logs)
    routes: dict[str, list[str]] = {}
    try:
        for body in bodies:  # each query once, its upstream GETs taken from the upstream's request log
            client.delete(f"{upstream}/_demo/requests")
            answer = client.post(
                f"{gateway.url}/graphql", content=body, headers={**AUTH, "content-type": "application/json"}
            ).json()
            assert answer.get("data"), answer
            log = client.get(f"{upstream}/_demo/requests").json()["requests"]
            routes[body.decode()] = [f"{e['path']}?{e['query']}" if e["query"] else e["path"] for e in log]
        routes_file = logs / f"routes-{gateway.url.rsplit(':', 1)[1]}.json"
        routes_file.write_text(json.dumps(routes))
        pport = free_port()
        passthrough = start(
            ["bench.passthrough:app", "--port", str(pport), "--log-level", "warning"],
            pport,
            logs / f"passthrough-{pport}.log",
            "/healthz",
            {"PASSTHROUGH_ROUTES": str(routes_file), "PASSTHROUGH_UPSTREAM": upstream},
            module="uvicorn",
        )
        try:
            cpu = in_turns({"gateway": (gateway, bodies), "passthrough": (passthrough, bodies)}, args)
        finally:
            stop(passthrough)
    finally:
        stop(gateway)
        client.close()
    return {
        "gateway_cpu_ms": cpu["gateway"],
        "passthrough_cpu_ms": cpu["passthrough"],
        "ratio": round(cpu["gateway"] / cpu["passthrough"], 2),
        "upstream_gets_per_query": len(next(iter(routes.values()))),
    }


def zero_cost_ratio(upstream: str, logs: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One gateway, gateway CPU per request: the 50-case query of every zero-cost field (derived included)
    against the copy-only one, in turns."""
    sets = {
        "zero_cost": [json.dumps({"query": q}).encode() for q in ZERO_COST_50_VARIANTS],
        "copy_only": [json.dumps({"query": q}).encode() for q in FULL_50_VARIANTS],
    }
    gateway = gateway_for(upstream, logs)
    try:
        for bodies in sets.values():
            answer = httpx.post(
                f"{gateway.url}/graphql",
                content=bodies[0],
                headers={**AUTH, "content-type": "application/json"},
            ).json()
            assert answer.get("data") and not answer.get("errors"), answer
        cpu = in_turns({name: (gateway, bodies) for name, bodies in sets.items()}, args)
    finally:
        stop(gateway)
    return {
        "zero_cost_cpu_ms": cpu["zero_cost"],
        "copy_only_cpu_ms": cpu["copy_only"],
        "ratio": round(cpu["zero_cost"] / cpu["copy_only"], 2),
    }


def fixed_cost(upstream: str, logs: Path, args: argparse.Namespace) -> dict[str, Any]:
    """`{ __typename }` on the gateway against a bare Starlette endpoint on the same uvicorn that reads the body
    and answers fixed JSON (`bench/bare.py`), CPU per request, in turns."""
    bodies = [json.dumps({"query": "{ __typename }"}).encode()]
    gateway = gateway_for(upstream, logs)
    bport = free_port()
    bare = start(
        ["bench.bare:app", "--port", str(bport), "--log-level", "warning", "--no-access-log"],
        bport,
        logs / f"bare-{bport}.log",
        "/healthz",
        module="uvicorn",
    )
    try:
        answer = httpx.post(
            f"{gateway.url}/graphql", content=bodies[0], headers={**AUTH, "content-type": "application/json"}
        ).content
        assert answer == ANSWER, answer
        cpu = in_turns({"gateway": (gateway, bodies), "bare": (bare, bodies)}, args)
    finally:
        stop(bare)
        stop(gateway)
    return {
        "gateway_cpu_ms": cpu["gateway"],
        "bare_cpu_ms": cpu["bare"],
        "ratio": round(cpu["gateway"] / cpu["bare"], 2),
    }


def transports(upstream: str, path: str, rounds: int = 6, gets: int = 200) -> dict[str, Any]:
    """Client CPU per GET of one upstream answer: httpx's own transport against httpx-aiohttp's (the httpx API
    kept), in turns, 4 at a time, the body read whole as the gateway does."""
    from httpx_aiohttp import AiohttpTransport

    async def run() -> dict[str, Any]:
        clients = {
            "httpx": httpx.AsyncClient(),
            "httpx-aiohttp": httpx.AsyncClient(transport=AiohttpTransport()),
        }
        headers = {"Authorization": "Bearer demo-token"}
        spent = dict.fromkeys(clients, 0.0)
        size = 0

        async def worker(client: httpx.AsyncClient, n: int) -> int:
            got = 0
            for _ in range(n):
                async with client.stream("GET", upstream + path, headers=headers) as response:
                    got = len(b"".join([chunk async for chunk in response.aiter_bytes()]))
            return got

        for client in clients.values():  # warm-up: connections open
            await asyncio.gather(*(worker(client, 5) for _ in range(4)))
        for _ in range(rounds):
            for name, client in clients.items():
                started = time.process_time()
                sizes = await asyncio.gather(*(worker(client, gets // 4) for _ in range(4)))
                spent[name] += time.process_time() - started
                size = sizes[0]
        for client in clients.values():
            await client.aclose()
        per_get = {name: round(seconds * 1000 / (rounds * gets), 3) for name, seconds in spent.items()}
        return {
            "body_kb": round(size / 1024),
            "cpu_ms_per_get": per_get,
            "aiohttp_vs_httpx": round(per_get["httpx-aiohttp"] / per_get["httpx"], 2),
        }

    return asyncio.run(run())


def doubling_query_ms(rounds: int = 20) -> float:
    """CPU ms to parse, validate, plan and check the 2^19-path doubling fragment query (a new text each round,
    so nothing is reused): the median."""
    from gateway.planning.checks import check
    from gateway.planning.documents import document_for
    from gateway.planning.executable import schema
    from gateway.planning.limits import Limits

    query = "{ case(id: 3) { ...F19 } } fragment F0 on Case { caseId name } " + " ".join(
        f"fragment F{i} on Case {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 20)
    )
    times = []
    for n in range(rounds):
        started = time.process_time()
        document = document_for(f"{query} # {n} {time.time()}", 3000)
        assert document.validate(schema._schema, ()) == []
        plan, _ = document.plan(schema._schema, None, {})
        assert plan is not None and check(plan, {}, Limits()) == []
        times.append((time.process_time() - started) * 1000)
    return round(statistics.median(times), 2)


def cpu_and_requests(server: Any, bodies: list[bytes], args: argparse.Namespace) -> tuple[float, int]:
    """CPU seconds the server's processes spent under one wrk run of `args.duration` seconds, and requests."""
    pids = pids_of(server.proc.pid)
    before = cpu_seconds(pids)
    stats = run_wrk(server.url, bodies, args.duration, args.connections, 1)
    assert stats["errors"] == 0, stats
    return cpu_seconds(pids) - before, stats["requests"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="in-process rounds of each path")
    parser.add_argument("--duration", type=int, default=4, help="seconds of wrk load per server and turn")
    parser.add_argument("--turns", type=int, default=3, help="turns of gateway and passthrough load")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--no-server", action="store_true", help="only the in-process data paths")
    parser.add_argument("--no-data-path", action="store_true", help="only the measures over HTTP")
    args = parser.parse_args()

    fifty = zero_cost = fan_out = {}
    doubling = 0.0
    if not args.no_data_path:
        fifty = data_path(
            lambda page: FULL_50.replace("perPage: 50", f"perPage: 50, page: {page}"), 6, args.rounds
        )
        print("50-case data path:", json.dumps(fifty), flush=True)
        zero_cost = data_path(
            lambda page: ZERO_COST_50.replace("perPage: 50", f"perPage: 50, page: {page}"), 6, args.rounds
        )
        print("50-case zero-cost data path:", json.dumps(zero_cost), flush=True)
        fan_out = data_path(lambda page: FAN_OUT_PAGE % page, 6, args.rounds)
        print("fan-out data path:", json.dumps(fan_out), flush=True)
        doubling = doubling_query_ms()
        print("doubling fragment query, parse to plan:", doubling, "ms", flush=True)
    servers: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    derived: dict[str, Any] = {}
    fixed: dict[str, Any] = {}
    if not args.no_server:
        logs = Path(tempfile.mkdtemp(prefix="casegraph-bench-plan-"))
        upstream = start_upstream(logs / "upstream.log")
        try:
            derived = zero_cost_ratio(upstream.url, logs, args)
            print("50-case zero-cost / copy-only over HTTP:", json.dumps(derived), flush=True)
            fixed = fixed_cost(upstream.url, logs, args)
            print("{ __typename } / bare Starlette over HTTP:", json.dumps(fixed), flush=True)
            servers["50-case"] = server_ratio(upstream.url, logs, FULL_50_VARIANTS, args)
            print("50-case over HTTP:", json.dumps(servers["50-case"]), flush=True)
            servers["fan-out"] = server_ratio(upstream.url, logs, FAN_OUT_VARIANTS, args)
            print("fan-out over HTTP:", json.dumps(servers["fan-out"]), flush=True)
            clients = transports(upstream.url, "/api/v2/cases?per_page=50")
            print("httpx transports:", json.dumps(clients), flush=True)
        finally:
            stop(upstream.process)

    stamp = f"{datetime.now(UTC):%Y-%m-%d-%H%M}"
    lines = [
        f"# Operation plans: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()),
        "",
        "## A request's data path in process (median CPU ms; a different upstream body each round; in turns)",
        "",
        "| query | upstream KB | planned | fully decoded | floor (loads + dumps) | planned / floor | fully decoded / floor | peak alloc planned MiB | peak alloc fully decoded MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in (
        ("50 v2 cases, every copied field", fifty),
        ("50 v2 cases, every zero-cost field (derived included)", zero_cost),
        ("20 legacy cases -> v2 fan-out", fan_out),
    ):
        if not r:
            continue
        lines.append(
            f"| {name} | {r['upstream_kb']} | {r['planned_ms']} | {r['fully_decoded_ms']} | {r['floor_ms']} | "
            f"{r['planned_vs_floor']} | {r['fully_decoded_vs_floor']} | {r['peak_alloc_planned_mib']} | "
            f"{r['peak_alloc_fully_decoded_mib']} |"
        )
    lines += [
        "",
        f"The doubling fragment query (20 fragments each spreading the previous twice, 2^19 paths): parsed, "
        f"validated, planned and checked in {doubling} ms CPU (median of 20 new texts).",
    ]
    if servers:
        lines += [
            "",
            f"## Over HTTP: gateway CPU per request vs a passthrough of the same upstream GETs (wrk, "
            f"{args.connections} connections, {args.turns} turns of {args.duration} s each, cache off)",
            "",
            "| query | upstream GETs | gateway CPU ms | passthrough CPU ms | ratio |",
            "|---|---|---|---|---|",
        ]
        for name, r in servers.items():
            lines.append(
                f"| {name} | {r['upstream_gets_per_query']} | {r['gateway_cpu_ms']} | "
                f"{r['passthrough_cpu_ms']} | {r['ratio']} |"
            )
    if derived:
        lines += [
            "",
            "## Over HTTP: what a field that makes no upstream call costs, and what a request that does nothing "
            "costs (gateway CPU per request, in turns)",
            "",
            "| pair | numerator CPU ms | denominator CPU ms | ratio | target |",
            "|---|---|---|---|---|",
            f"| 50-case every zero-cost field / copy-only | {derived['zero_cost_cpu_ms']} | "
            f"{derived['copy_only_cpu_ms']} | {derived['ratio']} | <= 1.15 |",
            f"| `{{ __typename }}` / bare Starlette (body read, fixed JSON) | {fixed['gateway_cpu_ms']} | "
            f"{fixed['bare_cpu_ms']} | {fixed['ratio']} | <= 2.0 |",
        ]
    if clients.get("cpu_ms_per_get"):
        per_get = clients["cpu_ms_per_get"]
        lines += [
            "",
            f"Upstream client, CPU per GET of a {clients['body_kb']} KB answer (4 at a time, in turns): httpx "
            f"{per_get['httpx']} ms, httpx-aiohttp {per_get['httpx-aiohttp']} ms "
            f"(ratio {clients['aiohttp_vs_httpx']}).",
        ]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"plan-{stamp}.md").write_text(text)
    (RESULTS / f"plan-{stamp}.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "data_path": {"50-case": fifty, "50-case-zero-cost": zero_cost, "fan-out": fan_out},
                "zero_cost_vs_copy_only": derived,
                "typename_vs_bare": fixed,
                "doubling_query_ms": doubling,
                "servers": servers,
                "transports": clients,
            },
            indent=2,
        )
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
