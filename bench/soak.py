"""The soak: mixed queries against the gateway with injected upstream faults, for a bounded time, on loopback.

    python -m bench.soak [--duration 600] [--connections 8] [--fault-rate 0.05] [--sample 10]

Starts the demo upstream and the gateway (`casegraph serve`) as processes on 127.0.0.1, injects faults into
the demo upstream (`/_demo/faults`, seeded, so a run is repeatable: 503s, resets, malformed and truncated
bodies, 429s with Retry-After, answers slower than READ_TIMEOUT and bodies over MAX_UPSTREAM_BODY_BYTES, in
all `--fault-rate` of upstream requests), and drives `--connections` concurrent clients through a mix of
queries for `--duration` seconds. It reports the answers by error code, latency percentiles, the gateway's
RSS sampled over time, and the gateway's own retry and breaker counters; the report goes to
bench/results/soak-<date>-<host>.md and .json. Every request has a client timeout, and the processes are
stopped at the end whatever happens, so the run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import AUTH, free_port, gateway_env, start, start_upstream, stop  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CLIENT_TIMEOUT = 30.0  # seconds; an answer slower than this counts as CLIENT_TIMEOUT (a hang)
GATEWAY_ENV = {
    "CACHE_TTL": "0",  # every query reaches the upstream, so every one can meet a fault
    "READ_TIMEOUT": "2",
    "LOG_LEVEL": "warning",
}
# Shares of `--fault-rate`: each kind of fault the gateway must turn into a coded field error.
FAULT_MIX = [
    ({"status": 503}, 0.20),
    ({"reset": True}, 0.20),
    ({"malformed": True}, 0.15),
    ({"truncated": True}, 0.10),
    ({"rate_limit": {"retry_after": 1}}, 0.15),
    ({"latency_ms": 2500}, 0.10),  # longer than READ_TIMEOUT
    ({"huge_body": 9 * 1024 * 1024}, 0.10),  # over the default MAX_UPSTREAM_BODY_BYTES (8 MiB)
]

QUERIES = [
    # (name, query text with %d for a varying number)
    ("case", "{ case(id: %d) { caseId name status priority assignees { email } tags { name } } }"),
    (
        "page",
        "{ cases(perPage: 20, page: %d) { items { caseId name priority sla { status } } pageInfo { count } } }",
    ),
    (
        "nested",
        "{ cases(perPage: 5, page: %d) { items { caseId assignees { email cases(first: 3) { caseId } } "
        "linkedCases { caseId name } legacyCase { caseNumber } } } }",
    ),
    (
        "legacy",
        "{ legacyCases(perPage: 10, page: %d) { items { legacyId caseNumber case { caseId status } } } }",
    ),
    (
        "filtered",
        "{ cases(filter: {status: OPEN, priority: [HIGH, CRITICAL]}, perPage: 10, page: %d) { items { caseId } } }",
    ),
    ("both", "{ case(id: %d) { name } legacyCase(id: 1001) { caseNumber } }"),
]


@dataclass
class Tally:
    requests: int = 0
    ok: int = 0  # answers without errors
    partial: int = 0  # answers with data and errors
    codes: Counter[str] = field(default_factory=Counter)  # errors by extensions.code
    by_query: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def client_loop(url: str, deadline: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as client:
        while time.monotonic() < deadline:
            name, text = rng.choice(QUERIES)
            query = text % rng.randint(1, 12) if "%d" in text else text
            started = time.perf_counter()
            try:
                response = await client.post("/graphql", json={"query": query}, headers=AUTH)
            except httpx.TimeoutException:
                tally.codes["CLIENT_TIMEOUT"] += 1
                tally.requests += 1
                continue
            except httpx.HTTPError as exc:
                tally.codes[f"CLIENT_{type(exc).__name__}"] += 1
                tally.requests += 1
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.requests += 1
            tally.by_query[name] += 1
            if response.status_code != 200:
                tally.codes[f"HTTP_{response.status_code}"] += 1
                continue
            answer = response.json()
            errors = answer.get("errors") or []
            if not errors:
                tally.ok += 1
                continue
            if answer.get("data") and any(v is not None for v in answer["data"].values()):
                tally.partial += 1
            for error in errors:
                tally.codes[(error.get("extensions") or {}).get("code", "UNCODED")] += 1


async def sample_rss(pid: int, deadline: float, every: float, samples: list[tuple[float, float]]) -> None:
    started = time.monotonic()
    while True:
        samples.append((round(time.monotonic() - started, 1), round(rss_mb(pid), 1)))
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))


async def drive(url: str, args: argparse.Namespace, pid: int) -> tuple[Tally, list[tuple[float, float]]]:
    tally = Tally()
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + args.duration
    await asyncio.gather(
        sample_rss(pid, deadline, args.sample, samples),
        *(client_loop(url, deadline, tally, seed) for seed in range(args.connections)),
    )
    return tally, samples


def report(data: dict[str, Any]) -> str:
    lat = data["latency_ms"]
    fired = sum(f["fired"] for f in data["faults"])
    lines = [
        f"# Soak: {data['duration_s']:.0f} s, {data['connections']} connections, "
        f"{data['fault_rate']:.0%} of upstream requests faulted",
        "",
        f"{data['started']} on {data['host']} (Python {data['python']}), gateway settings: "
        + ", ".join(f"{k}={v}" for k, v in data["gateway_env"].items()),
        "",
        "| Requests | req/s | Clean answers | Partial answers | p50 | p90 | p99 | max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {data['requests']} | {data['rps']:.1f} | {data['ok']} | {data['partial']} | {lat['p50']:.1f} ms "
        f"| {lat['p90']:.1f} ms | {lat['p99']:.1f} ms | {lat['max']:.1f} ms |",
        "",
        "Errors by code (one answer may carry several):",
        "",
        "| Code | Count |",
        "| --- | --- |",
        *[f"| `{code}` | {count} |" for code, count in sorted(data["codes"].items(), key=lambda kv: -kv[1])],
        "",
        "Injected faults (demo upstream's count of requests each rule answered):",
        "",
        "| Fault | Fired |",
        "| --- | --- |",
        *[f"| `{json.dumps(f['rule'])}` | {f['fired']} |" for f in data["faults"]],
        "",
        f"Upstream requests the demo logged: {data['upstream_requests']}, of which {fired} faulted "
        f"({fired / max(1, data['upstream_requests']):.1%}). `NOT_FOUND` errors are the demo data's dangling "
        "links (per item), not faults. Gateway counters (/healthz):",
        "",
        "| Upstream | Requests | Attempts | Retries | Retries denied (budget) | Breaker | Times opened | Rejected |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {api} | {u['requests']} | {u['attempts']} | {u['retries']} | {u['retriesDenied']} | "
            f"{u['breaker']['state']} | {u['breaker']['timesOpened']} | {u['breaker']['rejected']} |"
            for api, u in sorted(data["upstreams"].items())
        ],
        "",
        f"Gateway RSS: {data['rss_mb']['start']:.1f} MB at start, {data['rss_mb']['end']:.1f} MB at the end, "
        f"{data['rss_mb']['max']:.1f} MB at most. Over time (s, MB):",
        "",
        " ".join(f"{t:.0f}:{mb:.1f}" for t, mb in data["rss_samples"]),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.05, help="share of upstream requests faulted")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault draws")
    args = parser.parse_args()
    if not 1 <= args.duration <= 3600 or not 1 <= args.connections <= 64:
        parser.error("--duration must be 1..3600 s and --connections 1..64")

    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="casegraph-soak-"))  # the processes' logs, for a look afterwards
    gw_port = free_port()
    upstream = start_upstream(logs / "upstream.log")
    gateway = None
    try:
        gateway = start(
            ["serve", "--port", str(gw_port)],
            gw_port,
            logs / "gateway.log",
            "/healthz",
            gateway_env(upstream.url, **GATEWAY_ENV),
        )
        control = httpx.Client(base_url=upstream.url, timeout=10)
        for index, (rule, share) in enumerate(FAULT_MIX):
            spec = {**rule, "error_rate": round(args.fault_rate * share, 6), "seed": args.seed + index}
            control.post("/_demo/faults", json=spec).raise_for_status()
        control.delete("/_demo/requests").raise_for_status()
        started = datetime.now(UTC)
        print(
            f"soak: {args.duration:.0f} s at {args.connections} connections against {gateway.url}", flush=True
        )
        t0 = time.monotonic()
        tally, samples = asyncio.run(drive(gateway.url, args, gateway.proc.pid))
        elapsed = time.monotonic() - t0
        health = httpx.get(gateway.url + "/healthz", timeout=10).json()
        faults = control.get("/_demo/faults").json()["rules"]
        upstream_requests = control.get("/_demo/requests").json()["count"]
    finally:
        if gateway is not None:
            stop(gateway)
        stop(upstream.process)

    latencies_ms = [s * 1000 for s in tally.latencies]
    rss = [mb for _, mb in samples]
    data: dict[str, Any] = {
        "started": f"{started:%Y-%m-%d %H:%M} UTC",
        "host": platform.node() or "host",
        "python": platform.python_version(),
        "duration_s": elapsed,
        "connections": args.connections,
        "fault_rate": args.fault_rate,
        "gateway_env": GATEWAY_ENV,
        "requests": tally.requests,
        "rps": tally.requests / elapsed if elapsed else 0.0,
        "ok": tally.ok,
        "partial": tally.partial,
        "codes": dict(tally.codes),
        "by_query": dict(tally.by_query),
        "latency_ms": {
            "p50": percentile(latencies_ms, 50),
            "p90": percentile(latencies_ms, 90),
            "p99": percentile(latencies_ms, 99),
            "max": max(latencies_ms, default=0.0),
        },
        "rss_mb": {
            "start": rss[0] if rss else 0.0,
            "end": rss[-1] if rss else 0.0,
            "max": max(rss, default=0.0),
        },
        "rss_samples": samples,
        "upstreams": health.get("upstreams", {}),
        "faults": [
            {
                "rule": {k: v for k, v in f.items() if k not in ("id", "fired", "remaining")},
                "fired": f["fired"],
            }
            for f in faults
        ],
        "upstream_requests": upstream_requests,
    }
    stamp = f"soak-{started:%Y-%m-%d}-{data['host']}"
    (RESULTS / f"{stamp}.md").write_text(report(data))
    (RESULTS / f"{stamp}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(report(data))
    print(f"soak: wrote {RESULTS / stamp}.md and .json; process logs in {logs}")
    hangs = tally.codes.get("CLIENT_TIMEOUT", 0) + sum(
        v for k, v in tally.codes.items() if k.startswith("HTTP_5")
    )
    internal = tally.codes.get("INTERNAL_SERVER_ERROR", 0)
    return 1 if hangs or internal else 0


if __name__ == "__main__":
    sys.exit(main())
