"""Before and after the edge's fair turns and body timeout (issue 22), in one run: the common path's cost.

    python -m bench.edge --before <commit> [--after <commit>] [--duration 5] [--turns 3] [--connections 8]

Starts the demo upstream, a gateway running `--before`'s code and one running `--after`'s (default: this
worktree's files; a commit's are exported to a temporary directory, first on PYTHONPATH; the same venv), both
with the cache off. Then, in turns
(before, after, before, after...; after 2 s of unrecorded warm-up each), drives each with wrk: `{ __typename }` and the 50-case query (every plain
field of 50 cases), and records req/s and the gateway's CPU per request (from /proc). The ratio after/before of
each scenario's mean over turns is the result: this VM's speed swings, so only a ratio within one run tells.
Results go to bench/results/edge-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import FULL_50, RESULTS, cpu_seconds, run_wrk  # noqa: E402
from tests.support import free_port, gateway_env, pids_of, start, start_upstream, stop  # noqa: E402

SCENARIOS = {
    "typename": json.dumps({"query": "{ __typename }"}).encode(),
    "50-case": json.dumps({"query": FULL_50}).encode(),
}


def export(commit: str, into: Path) -> None:
    """`commit`'s files under `into` (git archive)."""
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="the commit to compare with (e.g. the merge base)")
    parser.add_argument("--after", default=None, help="the commit to measure (default: this worktree)")
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds of wrk load per gateway, scenario, turn"
    )
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "before", ROOT
        export(args.before, old)
        if args.after:
            new = Path(tmp) / "after"
            export(args.after, new)
        logs = Path(tmp)
        upstream = start_upstream(logs / "upstream.log")
        gateways = {}
        try:
            for name, env in (("before", {"PYTHONPATH": str(old)}), ("after", {"PYTHONPATH": str(new)})):
                port = free_port()
                gateways[name] = start(
                    ["serve", "--port", str(port)],
                    port,
                    logs / f"{name}.log",
                    "/healthz",
                    {**gateway_env(upstream.url, CACHE_TTL="0", LOG_LEVEL="warning"), **env},
                )
            results: dict[str, dict[str, list[dict[str, float]]]] = {
                s: {g: [] for g in gateways} for s in SCENARIOS
            }
            for body in SCENARIOS.values():  # warm-up, not recorded: imports, caches, the first allocations
                for gw in gateways.values():
                    run_wrk(gw.url, [body], 2, args.connections, 2, timeout=5)
            for turn in range(args.turns):
                for scenario, body in SCENARIOS.items():
                    for name, gw in gateways.items():
                        pids = pids_of(gw.proc.pid)
                        cpu = cpu_seconds(pids)
                        out = run_wrk(gw.url, [body], args.duration, args.connections, 2, timeout=5)
                        used = cpu_seconds(pids) - cpu
                        results[scenario][name].append(
                            {
                                "rps": out["requests"] / out["seconds"],
                                "cpu_ms": 1000 * used / max(out["requests"], 1),
                                "errors": out["errors"],
                            }
                        )
                        print(turn, scenario, name, results[scenario][name][-1], flush=True)
        finally:
            for gw in gateways.values():
                stop(gw)
            stop(upstream.process)
    summary = summarize(results)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"edge-{stamp}.json").write_text(json.dumps({"args": vars(args), "turns": results, **summary}))
    text = report(summary, args, stamp)
    (RESULTS / f"edge-{stamp}.md").write_text(text)
    print(text)
    return 0


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summarize(results: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"means": {}, "ratios": {}}
    for scenario, by_gateway in results.items():
        means = {
            g: {k: mean([t[k] for t in turns]) for k in ("rps", "cpu_ms")} for g, turns in by_gateway.items()
        }
        out["means"][scenario] = means
        paired = sorted(
            a["cpu_ms"] / b["cpu_ms"] for a, b in zip(by_gateway["after"], by_gateway["before"], strict=True)
        )
        out["ratios"][scenario] = {
            "cpu_ms": means["after"]["cpu_ms"] / means["before"]["cpu_ms"],
            "rps": means["after"]["rps"] / means["before"]["rps"],
            # each turn's after/before (measured one right after the other), their median: drift cancels
            "cpu_ms_paired_median": paired[len(paired) // 2],
            "cpu_ms_paired": paired,
        }
    return out


def report(summary: dict[str, Any], args: argparse.Namespace, stamp: str) -> str:
    lines = [
        f"# Edge before/after, {stamp} UTC",
        "",
        f"`python -m bench.edge --before {args.before} --after {args.after or 'worktree'} --duration {args.duration} --turns {args.turns} "
        f"--connections {args.connections}`: one worker each, cache off, in turns; means over the turns.",
        "",
        "| scenario | CPU ms/request before | after | after/before | median of each turn's | req/s before | after | after/before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, means in summary["means"].items():
        ratio = summary["ratios"][scenario]
        lines.append(
            f"| {scenario} | {means['before']['cpu_ms']:.3f} | {means['after']['cpu_ms']:.3f} | "
            f"{ratio['cpu_ms']:.2f} | {ratio['cpu_ms_paired_median']:.2f} "
            f"({', '.join(f'{r:.2f}' for r in ratio['cpu_ms_paired'])}) | {means['before']['rps']:.0f} | {means['after']['rps']:.0f} | "
            f"{ratio['rps']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
