"""The fixed cost of a request (issue 21), before and after, in one run.

    python -m bench.fixed_cost --before REV [--duration 4] [--turns 3] [--connections 4]

`{ __typename }` on the gateway at git revision `REV` (extracted with `git archive`) and on this tree, and the
bare Starlette endpoint (`bench/bare.py`: reads the body, answers fixed JSON) on the same uvicorn: CPU per
request of each under the same wrk load, in turns, so the VM's speed changes hit them alike. Writes
`bench/results/fixed-cost-<date>.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bare import ANSWER  # noqa: E402
from bench.incremental import gateway_at  # noqa: E402
from bench.plan import in_turns  # noqa: E402
from tests.support import AUTH, free_port, start, start_upstream, stop  # noqa: E402

BODY = json.dumps({"query": "{ __typename }"}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="the git revision to compare with")
    parser.add_argument("--duration", type=int, default=4, help="seconds of wrk load per server and turn")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    revision = subprocess.run(
        ["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # `python -m` puts the working directory first on the path: neither tree's
        old = Path(tmp) / "before"
        old.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        logs = Path(tmp) / "logs"
        logs.mkdir()
        upstream = start_upstream(logs / "upstream.log")
        servers = {}
        try:
            servers["before"] = gateway_at(old, upstream.url, logs, "before")
            servers["after"] = gateway_at(ROOT, upstream.url, logs, "after")
            port = free_port()
            servers["bare"] = start(
                ["bench.bare:app", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                port,
                logs / "bare.log",
                "/healthz",
                {"PYTHONPATH": str(ROOT)},
                module="uvicorn",
            )
            for name in ("before", "after"):
                answer = httpx.post(
                    f"{servers[name].url}/graphql",
                    content=BODY,
                    headers={**AUTH, "content-type": "application/json"},
                ).content
                assert answer == ANSWER, (name, answer)
            cpu = in_turns({name: (server, [BODY]) for name, server in servers.items()}, args)
        finally:
            for server in servers.values():
                stop(server)
            stop(upstream.process)
    result = {
        **{f"{name}_cpu_ms": ms for name, ms in cpu.items()},
        "before_vs_bare": round(cpu["before"] / cpu["bare"], 2),
        "after_vs_bare": round(cpu["after"] / cpu["bare"], 2),
        "after_vs_before": round(cpu["after"] / cpu["before"], 2),
    }
    print(json.dumps(result))
    command = (
        f"python -m bench.fixed_cost --before {args.before} --duration {args.duration} --turns {args.turns} "
        f"--connections {args.connections}"
    )
    lines = [
        f"# Fixed cost of a request, {now:%Y-%m-%d %H:%M} UTC (before = {revision})",
        "",
        f"`{command}`: `{{ __typename }}`, gateway CPU per request under wrk ({args.connections} connections, "
        f"{args.turns} turns of {args.duration} s, in turns with the others), load {os.getloadavg()[0]:.1f}.",
        "",
        "| server | CPU ms per request | / bare |",
        "|---|---|---|",
        f"| gateway before ({revision}) | {cpu['before']} | {result['before_vs_bare']} |",
        f"| gateway after | {cpu['after']} | {result['after_vs_bare']} |",
        f"| bare Starlette (`bench/bare.py`) | {cpu['bare']} | 1 |",
        "",
        f"after / before: {result['after_vs_before']}",
        "",
    ]
    out = ROOT / "bench" / "results" / f"fixed-cost-{now:%Y-%m-%d-%H%M}.md"
    out.write_text("\n".join(lines))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
