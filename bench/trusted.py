"""What a trusted document and a revalidated GET cost the gateway: real processes, real HTTP, wrk.

    python -m bench.trusted [--duration 5] [--turns 3] [--connections 4]

Two gateways on the demo upstream (upstream cache on, CACHE_TTL=60, the query's manifest loaded with
TRUSTED_DOCUMENTS, mode `off` so the same query may also come as text): one with the response cache (the
answers are kept whole), one without (each request executes, from the upstream cache). For each, the same GET
query sent as text and by `documentId`; on the first, the same GET revalidated (`If-None-Match` with its ETag:
304) against `{ __typename }` by GET (no upstream, nothing kept: the cheapest request that executes). The
gateway's CPU per request comes from /proc (utime + stime over the requests wrk made). The scenarios of a pair
alternate, `--turns` times, and each pair's ratio is taken over the medians: this VM's speed swings within
minutes, so only ratios measured side by side in one run mean anything.

Targets (issue 23): trusted by id <= text (ratio <= 1.0, in each mode); 304 <= `{ __typename }`.
Results go to bench/results/trusted-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import RESULTS, cpu_seconds, machine  # noqa: E402
from tests.support import AUTH, free_port, gateway_env, pids_of, start, start_upstream, stop  # noqa: E402

QUERY = (
    "query Cases($n: Int!) { cases(perPage: $n) { items { caseId name status priority createdAt "
    "assignees { userId email } } pageInfo { count } } }"
)
VARIABLES = {"n": 20}
TYPENAME = "{ __typename }"


def get_path(**params: Any) -> str:
    return "/graphql?" + urlencode(
        {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    )


def wrk(url: str, path: str, headers: dict[str, str], duration: int, connections: int) -> dict[str, Any]:
    """wrk's count of requests and of answers by status class, for GETs of `path` with `headers`."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "get.lua"
        lines = [f'wrk.headers["{name}"] = {json.dumps(value)}' for name, value in headers.items()]
        lines += [
            "local statuses = {}",
            "function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end",
            "function done(summary, latency, requests)",
            '  io.write(string.format("JSON {\\"requests\\": %d, \\"errors\\": %d, \\"p50\\": %d}\\n", '
            "summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + "
            "summary.errors.write + summary.errors.timeout, latency:percentile(50)))",
            "end",
        ]
        script.write_text("\n".join(lines) + "\n")
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(script), url + path],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(line for line in out.splitlines() if line.startswith("JSON "))
    return json.loads(line[5:])


def cpu_per_request(
    gateway: Any, path: str, headers: dict[str, str], status: int, duration: int, connections: int
) -> dict[str, Any]:
    """One wrk run against `gateway`: the gateway's CPU microseconds per request (every answer `status`)."""
    check = httpx.get(gateway.url + path, headers=headers, timeout=10)
    assert check.status_code == status, (path, check.status_code, check.text[:300])
    pids = pids_of(gateway.process.proc.pid)
    before = cpu_seconds(pids)
    summary = wrk(gateway.url, path, headers, duration, connections)
    spent = cpu_seconds(pids) - before
    assert summary["errors"] == 0, summary  # wrk counts 4xx/5xx answers as errors, 3xx as answers
    return {
        "cpu_us": spent / summary["requests"] * 1e6,
        "requests": summary["requests"],
        "p50_us": summary["p50"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per scenario and turn")
    parser.add_argument("--turns", type=int, default=3, help="alternations of each pair")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="casegraph-bench-trusted-"))
    digest = hashlib.sha256(QUERY.encode()).hexdigest()
    manifest = work / "manifest.json"
    manifest.write_text(json.dumps({f"sha256:{digest}": QUERY}))
    upstream = start_upstream(work / "upstream.log")
    common = {"CACHE_TTL": "60", "TRUSTED_DOCUMENTS": str(manifest)}
    gateways = {}
    try:
        for name, extra in {"kept": {}, "executed": {"RESPONSE_CACHE": "false"}}.items():
            port = free_port()
            env = gateway_env(upstream.url, **common, **extra)
            gateways[name] = start(
                ["serve", "--port", str(port)], port, work / f"{name}.log", "/healthz", env
            )

        class GW:  # what cpu_per_request needs of a gateway
            def __init__(self, process: Any) -> None:
                self.url, self.process = process.url, process

        headers = {**AUTH, "Accept": "application/graphql-response+json"}
        text = get_path(query=QUERY, variables=VARIABLES)
        by_id = get_path(documentId=f"sha256:{digest}", variables=VARIABLES)
        etag = httpx.get(gateways["kept"].url + by_id, headers=headers).headers["etag"]
        pairs = {
            "kept: by id / as text": ("kept", (by_id, headers, 200), (text, headers, 200)),
            "executed: by id / as text": ("executed", (by_id, headers, 200), (text, headers, 200)),
            "304 / { __typename }": (
                "kept",
                (by_id, {**headers, "If-None-Match": etag}, 304),
                (get_path(query=TYPENAME), headers, 200),
            ),
        }
        results: dict[str, Any] = {}
        for pair, (where, first, second) in pairs.items():
            gw = GW(gateways[where])
            runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
            for _ in range(args.turns):
                for side, (path, hdrs, status) in (("a", first), ("b", second)):
                    runs[side].append(
                        cpu_per_request(gw, path, hdrs, status, args.duration, args.connections)
                    )
            a = statistics.median(r["cpu_us"] for r in runs["a"])
            b = statistics.median(r["cpu_us"] for r in runs["b"])
            results[pair] = {"a_cpu_us": a, "b_cpu_us": b, "ratio": a / b, "runs": runs}
            print(f"{pair}: {a:.0f} us / {b:.0f} us = {a / b:.2f}", flush=True)
    finally:
        for process in gateways.values():
            stop(process)
        stop(upstream.process)

    when = datetime.now(UTC)
    stamp = when.strftime("%Y-%m-%d-%H%M")
    RESULTS.mkdir(exist_ok=True)
    record = {
        "date": when.isoformat(timespec="seconds"),
        "machine": machine(),
        "args": vars(args),
        "pairs": results,
    }
    (RESULTS / f"trusted-{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")
    rows = [
        f"| {pair} | {r['a_cpu_us']:.0f} | {r['b_cpu_us']:.0f} | {r['ratio']:.2f} | "
        f"{'met' if r['ratio'] <= 1.0 else 'NOT met'} |"
        for pair, r in results.items()
    ]
    text_out = "\n".join(
        [
            f"# Trusted documents and 304: gateway CPU per request, {when:%Y-%m-%d %H:%M} UTC",
            "",
            f"`python -m bench.trusted --duration {args.duration} --turns {args.turns} "
            f"--connections {args.connections}` (medians of {args.turns} alternating wrk runs per scenario; "
            f"{machine()['cores']} CPUs, shared). Query: `{QUERY}` with `{json.dumps(VARIABLES)}`.",
            "",
            "| pair (a / b) | a: CPU us/request | b: CPU us/request | a / b | target a <= b |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )
    (RESULTS / f"trusted-{stamp}.md").write_text(text_out)
    print(text_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
