"""Incremental delivery (`@defer`/`@stream`, issue 24), measured in one run against the demo upstream.

    python -m bench.incremental --before REV [--duration 6] [--turns 3] [--connections 4]

0. What declaring the directives costs a query that does not use them, in process (no HTTP, so little
   noise): the fan-out and 50-case queries executed on recorded upstream bodies by the schema without the
   directives (graphql-core's `execute`, as before) and with them (`experimental_execute_incrementally`),
   `--rounds` times each in turns, CPU time medians compared.
1. What queries without the directives cost, before and after: the gateway at git revision `REV` (extracted
   with `git archive` to a temporary directory and run from there) and the gateway of this tree, side by
   side as processes with the cache off; wrk drives the fan-out query (20 v1 cases with their v2 cases) and
   the 50-case query (every field) at each in turns, `--turns` times, so the VM's swings hit both alike. The
   figure is the gateway's CPU per request (from /proc); the medians over turns are compared.
2. What the incremental path costs: the fan-out query with `... @defer { case {...} }` against the same
   query without it, on this tree's gateway, by concurrent clients for `--duration` seconds each, in turns:
   multipart/mixed (part by part) and merged into one JSON; CPU per request and upstream calls per query.
3. The issue's proof: the v2 case listing slowed to 1.5 s by the demo's fault injection, the deferred query
   sent `--samples` times one after the other: when the first part (the 20 v1 cases) arrived, when the last
   did, and the upstream calls each request made.

Results go to bench/results/incremental-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    FAN_OUT_VARIANTS,
    FULL_50_VARIANTS,
    RESULTS,
    cpu_seconds,
    machine,
    run_wrk,
)
from tests.support import AUTH, Process, free_port, gateway_env, pids_of, start, start_upstream, stop  # noqa: E402

DEFER = "case { caseId name status priority }"
DEFERRED_VARIANTS = [q.replace(DEFER, "... @defer { %s }" % DEFER) for q in FAN_OUT_VARIANTS]
# deferred once at the root: the page's items at once, all their v2 cases in one later part
AT_ROOT_VARIANTS = [
    "{ legacyCases(perPage: 20, page: %d) { items { legacyId caseNumber } } "
    "... @defer { legacyCases(perPage: 20, page: %d) { items { %s } } } }" % (page, page, DEFER)
    for page in range(1, 16)
]
PROOF = "{ legacyCases(perPage: 20) { items { legacyId caseNumber ... @defer { case { caseId name status } } } } }"
MULTIPART = "multipart/mixed, application/graphql-response+json"


def gateway_at(source: Path, upstream: str, logs: Path, name: str) -> Process:
    """`casegraph serve` run from `source` (its own `gateway` package first on the path), cache off."""
    port = free_port()
    env = gateway_env(upstream, CACHE_TTL="0", LOG_LEVEL="warning", PYTHONPATH=str(source))
    process = start(["serve", "--port", str(port)], port, logs / f"{name}.log", "/healthz", env)
    return process


def wrk_cpu(gateway: Process, queries: list[str], args: argparse.Namespace) -> float:
    """Gateway CPU ms per request under wrk."""
    bodies = [json.dumps({"query": q}).encode() for q in queries]
    with httpx.Client(timeout=60) as client:
        for body in bodies:  # warm: documents, plans, projections, connections
            client.post(
                f"{gateway.url}/graphql", content=body, headers={**AUTH, "content-type": "application/json"}
            )
    pids = pids_of(gateway.proc.pid)
    before = cpu_seconds(pids)
    stats = run_wrk(gateway.url, bodies, args.duration, args.connections, 2)
    assert stats["errors"] == 0, stats
    return (cpu_seconds(pids) - before) * 1000 / max(stats["requests"], 1)


async def client_cpu(gateway: Process, queries: list[str], accept: str, args: argparse.Namespace) -> float:
    """Gateway CPU ms per request with `args.connections` clients reading every answer to its end."""
    pids = pids_of(gateway.proc.pid)
    done = 0
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:

        async def one(query: str) -> None:
            async with client.stream(
                "POST", "/graphql", json={"query": query}, headers={**AUTH, "Accept": accept}
            ) as response:
                assert response.status_code == 200
                async for _ in response.aiter_raw():
                    pass

        for query in queries:  # warm
            await one(query)
        before = cpu_seconds(pids)
        deadline = time.monotonic() + args.duration

        async def worker(offset: int) -> None:
            nonlocal done
            n = offset
            while time.monotonic() < deadline:
                await one(queries[n % len(queries)])
                n += 1
                done += 1

        await asyncio.gather(*(worker(i * 3) for i in range(args.connections)))
    return (cpu_seconds(pids) - before) * 1000 / max(done, 1)


def proof(gateway: Process, upstream: str, samples: int) -> list[dict[str, float]]:
    """The issue's query with v2 slowed to 1.5 s: first and last part times, upstream calls, per request."""
    out = []
    with httpx.Client(timeout=60) as client:
        client.post(f"{upstream}/_demo/faults", json={"paths": ["/api/v2/cases"], "latency_ms": 1500})
        try:
            for _ in range(samples):
                client.delete(f"{upstream}/_demo/requests")
                started = time.perf_counter()
                first = None
                with client.stream(
                    "POST",
                    f"{gateway.url}/graphql",
                    json={"query": PROOF},
                    headers={**AUTH, "Accept": MULTIPART},
                ) as response:
                    seen = b""
                    for chunk in response.iter_raw():
                        seen += chunk
                        if first is None and seen.count(b"\r\n---") >= 2:
                            first = time.perf_counter() - started
                total = time.perf_counter() - started
                calls = len(client.get(f"{upstream}/_demo/requests").json()["requests"])
                out.append(
                    {
                        "first_part_ms": round((first or total) * 1000, 1),
                        "total_ms": round(total * 1000, 1),
                        "calls": calls,
                    }
                )
        finally:
            client.delete(f"{upstream}/_demo/faults")
    return out


def in_process(rounds: int) -> dict[str, dict[str, float]]:
    """Execution CPU ms (median) without and with the directives declared, same code otherwise."""
    from bench.plan import record, services_with
    from gateway.http.answer import encode_answer
    from gateway.planning.context import RequestContext
    from gateway.planning.executable import build_schema
    from gateway.upstream.credentials import Caller, credential_for
    from gateway.upstream.http import UpstreamResponse, decode_body

    logging.disable(logging.WARNING)  # the fan-out's dangling links are logged field errors
    queries = {"fan_out": FAN_OUT_VARIANTS[0], "fifty_cases": FULL_50_VARIANTS[0]}
    recorded = {name: asyncio.run(record(query)) for name, query in queries.items()}
    services = services_with()
    current = [recorded["fan_out"]]

    async def get_json(api: str, base: str, path: str, params: Any, caller: Any, decode: Any) -> Any:
        body, headers = current[0].answers[(api, path)]
        return UpstreamResponse(decode_body(api, path, body, decode), headers, 0.0)

    services.http.get_json = get_json  # type: ignore[method-assign]
    schemas = {"without": build_schema(incremental=False), "with": build_schema(incremental=True)}

    async def one(label: str, name: str) -> float:
        current[0] = recorded[name]
        context = RequestContext(services, Caller(credential_for(services.settings, "Bearer demo-token")))
        started = time.process_time()
        result = await schemas[label].execute(queries[name], context_value=context)
        encode_answer({"data": result.data})
        context.release()
        return (time.process_time() - started) * 1000

    async def run() -> dict[str, dict[str, float]]:
        times = {(label, name): [] for label in schemas for name in queries}
        for key in times:  # warm: plans, projections
            for _ in range(5):
                await one(*key)
        for _ in range(rounds):
            for key in times:
                times[key].append(await one(*key))
        out = {}
        for name in queries:
            without, with_ = (statistics.median(times[(label, name)]) for label in schemas)
            out[name] = {
                "without": round(without, 3),
                "with": round(with_, 3),
                "ratio": round(with_ / without, 3),
            }
        return out

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="the git revision to compare with (before @defer)")
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    revision = subprocess.run(
        ["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    now = datetime.now(UTC)
    declared = in_process(args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # `python -m` puts the working directory first on the path: neither tree's
        old = Path(tmp) / "before"
        old.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        logs = Path(tmp) / "logs"
        logs.mkdir()
        upstream = start_upstream(logs / "upstream.log")
        before = gateway_at(old, upstream.url, logs, "before")
        after = gateway_at(ROOT, upstream.url, logs, "after")
        try:
            for source in (old, ROOT):  # each gateway runs its own tree
                where = subprocess.run(
                    [sys.executable, "-c", "import gateway; print(gateway.__file__)"],
                    env={"PYTHONPATH": str(source)},
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                assert where.startswith(str(source)), (where, source)
            plain: dict[str, dict[str, list[float]]] = {
                "fan_out": {"before": [], "after": []},
                "fifty_cases": {"before": [], "after": []},
            }
            incremental: dict[str, list[float]] = {
                "undeferred": [],
                "deferred_multipart": [],
                "deferred_merged": [],
                "deferred_at_root_multipart": [],
            }
            for _ in range(args.turns):
                for name, queries in (("fan_out", FAN_OUT_VARIANTS), ("fifty_cases", FULL_50_VARIANTS)):
                    for label, gateway in (("before", before), ("after", after)):
                        plain[name][label].append(wrk_cpu(gateway, queries, args))
                for label, queries, accept in (
                    ("undeferred", FAN_OUT_VARIANTS, MULTIPART),
                    ("deferred_multipart", DEFERRED_VARIANTS, MULTIPART),
                    ("deferred_merged", DEFERRED_VARIANTS, "application/json"),
                    ("deferred_at_root_multipart", AT_ROOT_VARIANTS, MULTIPART),
                ):
                    incremental[label].append(asyncio.run(client_cpu(after, queries, accept, args)))
            samples = proof(after, upstream.url, args.samples)
        finally:
            for process in (before, after, upstream.process):
                stop(process)

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    result: dict[str, Any] = {
        "date": now.isoformat(timespec="seconds"),
        "before": revision,
        "machine": machine(),
        "args": vars(args),
        "declared_in_process_ms": declared,
        "without_directives_cpu_ms": {
            name: {label: median(v) for label, v in runs.items()}
            | {"after_vs_before": round(median(runs["after"]) / median(runs["before"]), 3)}
            for name, runs in plain.items()
        },
        "incremental_cpu_ms": {label: median(v) for label, v in incremental.items()},
        "proof": {
            "samples": samples,
            "first_part_ms_median": statistics.median(s["first_part_ms"] for s in samples),
            "total_ms_median": statistics.median(s["total_ms"] for s in samples),
            "calls": sorted({s["calls"] for s in samples}),
        },
    }
    inc = result["incremental_cpu_ms"]
    result["incremental_vs_undeferred"] = {
        "multipart": round(inc["deferred_multipart"] / inc["undeferred"], 2),
        "merged": round(inc["deferred_merged"] / inc["undeferred"], 2),
        "at_root_multipart": round(inc["deferred_at_root_multipart"] / inc["undeferred"], 2),
    }
    stamp = now.strftime("%Y-%m-%d-%H%M")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"incremental-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Incremental delivery, {now:%Y-%m-%d %H:%M} UTC (before = {revision})",
        "",
        f"`python -m bench.incremental --before {args.before} --duration {args.duration} --turns {args.turns} "
        f"--connections {args.connections}`; {result['machine']['cores']} cores ({result['machine']['cpu']}).",
        "",
        "| In process, execution CPU (median of %d) | directives not declared | declared | ratio |"
        % args.rounds,
        "| --- | --- | --- | --- |",
        *(
            f"| {name} | {row['without']} ms | {row['with']} ms | {row['ratio']} |"
            for name, row in declared.items()
        ),
        "",
        "| Without @defer/@stream: gateway CPU per request | before | after | after / before |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in result["without_directives_cpu_ms"].items():
        lines.append(f"| {name} | {row['before']} ms | {row['after']} ms | {row['after_vs_before']} |")
    lines += [
        "",
        "| Fan-out, this tree: gateway CPU per request | ms | vs undeferred |",
        "| --- | --- | --- |",
        f"| undeferred | {inc['undeferred']} | 1 |",
        f"| `... @defer`, multipart/mixed | {inc['deferred_multipart']} | {result['incremental_vs_undeferred']['multipart']} |",
        f"| `... @defer`, merged JSON | {inc['deferred_merged']} | {result['incremental_vs_undeferred']['merged']} |",
        f"| one `... @defer` at the root, multipart/mixed | {inc['deferred_at_root_multipart']} | "
        f"{result['incremental_vs_undeferred']['at_root_multipart']} |",
        "",
        f"v2 listing slowed to 1.5 s, {len(samples)} requests of the issue's query: first part (20 v1 cases) "
        f"{result['proof']['first_part_ms_median']} ms (median), whole {result['proof']['total_ms_median']} ms, "
        f"upstream calls per request {result['proof']['calls']}.",
        "",
    ]
    (RESULTS / f"incremental-{stamp}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
