"""The rolling-restart rehearsal: several gateways sharing one Redis behind a real load balancer (HAProxy),
restarted one after another under load, then one of them killed.

    python -m bench.rolling [--duration 60] [--instances 3] [--workers 2] [--rate 200] [--concurrency 16]
                            [--pre-stop 1] [--contrast]

Everything is a real process on 127.0.0.1: redis-server, the demo upstream, `--instances` gateways
(`casegraph serve --workers N`, all with the same CACHE_URL) and HAProxy (Debian's package) in front of
them, checking each gateway's `GET /readyz` every 0.5 s. A load generator sends `--rate` GraphQL queries a
second over `--concurrency` connections for `--duration` seconds and checks every answer against the one
the same query got before the load began (data and errors alike): anything else (an HTTP error, a
transport error, other data) is a failed request.

Two runs, each with fresh processes and an empty Redis:

- **rolling**: while the load runs, each gateway in turn does what a Kubernetes pod does when it is
  replaced (deploy/k8s): it leaves the balancer (HAProxy's `drain`, as the pod leaves the Service's
  endpoints), waits the preStop pause, gets SIGTERM, finishes its requests in flight and exits; it is
  started again and takes traffic once HAProxy's checks of `/readyz` pass. Round after round until the
  time is up.
- **kill**: halfway through, every process of one gateway gets SIGKILL (as a container's do when it is
  killed). HAProxy takes it out when its checks fail; it is started again. The requests it had in flight
  fail: the report counts them beside the failures. This run turns the cache off, sends single-case
  queries and has the demo upstream answer after 100 ms, so that requests are in flight when it dies.

With `--contrast`, a third run: the rolling restart without the drain step (SIGTERM while the gateway is
still in the balancer, as a pod without its preStop pause).

Reported: requests sent, answered, failed, p50/p99, the restarts and how long each instance was out, the
balancer's retries, and the upstream answers the queries used against the upstream calls made: every
answer says how many it took from the cache (`extensions.upstream`), so the difference is what the shared
cache saved (the demo upstream's own request log is the check). Results go to
bench/results/rolling-<date>-<host>.md and .json. tests/test_k8s.py runs a short version of both.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.soak import QUERIES, percentile  # noqa: E402
from tests.support import (  # noqa: E402
    AUTH,
    Process,
    RedisServer,
    Upstream,
    end,
    free_port,
    gateway_env,
    pids_of,
    start,
    start_gateway,
    start_upstream,
    stop,
    wait_for,
)

RESULTS = ROOT / "bench" / "results"
BACKEND = "gateways"
CLIENT_TIMEOUT = 30.0
CHECK_INTERVAL_MS = 500  # HAProxy's checks of /readyz; `fall` 2 and `rise` 2 of them
GATEWAY_ENV = {"LOG_LEVEL": "warning"}  # otherwise the defaults: CACHE_TTL 30 s, SHUTDOWN_TIMEOUT 30 s
PAGES = range(1, 5)  # each query of bench/soak.py's mix with these numbers: 24 distinct queries

HAPROXY_CONFIG = """\
global
    log stdout format raw local0
    stats socket {socket} mode 600 level admin
    maxconn 2000

defaults
    mode http
    log global
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    timeout http-request 10s  # a request head not complete within 10 s: 408 (uvicorn would wait for ever)
    timeout check 3s  # a /readyz check may take its READY_TIMEOUT (2 s) and some; as the pod's probe (4 s)
    # A request whose connection to a gateway failed (refused: nothing listens) is sent to another one.
    # Only then: a request that reached a gateway is never replayed (retry-on's default, conn-failure).
    retries 3
    option redispatch 1
    # One connection to a gateway per request: never a request sent on a kept-alive connection just as the
    # gateway closes it at a stop.
    option http-server-close

frontend casegraph
    bind 127.0.0.1:{port}
    option forwardfor  # X-Forwarded-For: the gateway counts its turn shares per client address
    default_backend {backend}
    # A line per request: the client's request id, the gateway that answered (or failed), how it ended.
    capture request header X-Request-ID len 32
    log-format "rid=%[capture.req.hdr(0)] server=%s status=%ST term=%tsc retries=%rc"

backend {backend}
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter {interval}ms fall 2 rise 2
{servers}
"""


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("haproxy is not installed (`make test` and `make rehearsal` install it)")
    return found


class Balancer:
    """HAProxy in front of the gateways' ports, with its admin socket for state changes and counters."""

    def __init__(self, servers: dict[str, int], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket = str(workdir / "haproxy.sock")
        lines = [f"    server {name} 127.0.0.1:{port} check" for name, port in servers.items()]
        config = workdir / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(
                socket=self.socket,
                port=self.port,
                backend=BACKEND,
                interval=CHECK_INTERVAL_MS,
                servers="\n".join(lines),
            )
        )
        binary = haproxy_binary()
        checked = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy -c: {checked.stdout}{checked.stderr}")
        self.log_path = workdir / "haproxy.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_for(lambda: Path(self.socket).exists() or self.proc.poll() is not None, "haproxy's socket")
        if self.proc.poll() is not None:
            raise RuntimeError(f"haproxy exited:\n{self.log_path.read_text()}")
        for name in servers:
            self.wait_until(name, "UP")

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(self.socket)
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """`show stat` of the backend: a row per server, and the backend's own as `BACKEND`."""
        text = self.command("show stat").lstrip("# ")
        return {row["svname"]: row for row in csv.DictReader(text.splitlines()) if row["pxname"] == BACKEND}

    def status(self, name: str) -> str:
        return self.stats()[name]["status"]

    def wait_until(self, name: str, status: str, limit: float = 30.0) -> None:
        wait_for(lambda: self.status(name) == status, f"HAProxy sees {name} {status}", limit, 0.02)

    def set_state(self, name: str, state: str) -> None:
        answer = self.command(f"set server {BACKEND}/{name} state {state}")
        if answer.strip():
            raise RuntimeError(f"haproxy: {answer}")

    def requests(self, expected: set[str], within: float = 5.0) -> dict[str, dict[str, str]]:
        """HAProxy's log line of each request, by request id: `server`, `status`, `term` (its termination
        state: `----` for a normal end) and `retries`. HAProxy writes a line once the session ends, which can
        be just after the client has its answer: this waits (at most `within` seconds) for the lines of the
        `expected` request ids."""
        deadline = time.monotonic() + within
        while True:
            found = {}
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("rid="):
                    fields = dict(part.split("=", 1) for part in line.split())
                    found[fields.pop("rid")] = fields
            if expected <= found.keys() or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def stop(self) -> None:
        end(self.proc)
        self.log.close()


def gone(pid: int) -> bool:
    """Every thread of the process has exited. (Its first thread turns zombie as soon as it is killed, but
    the open files it shares with the others, its listening socket among them, close with the last one.)"""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    for tid in threads:
        try:
            state = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state not in ("Z", "X"):
            return False
    return True


@dataclass
class Instance:
    name: str
    port: int
    process: Process
    exits: list[int] = field(default_factory=list)  # exit status of each stop (-9: killed)
    out_s: list[float] = field(default_factory=list)  # each time: out of the balancer until back UP


class Cluster:
    """redis-server, the demo upstream, N gateways sharing the Redis, HAProxy in front; `logs` keeps every
    process's log."""

    def __init__(self, instances: int, workers: int, logs: Path, **env: str) -> None:
        self.logs = logs
        self.workers = workers
        self.stack = ExitStack()
        try:
            self.redis = RedisServer(logs / "redis.log")
            self.stack.callback(self.redis.stop)
            self.upstream: Upstream = start_upstream(logs / "upstream.log")
            self.stack.callback(stop, self.upstream.process)
            self.env = {**GATEWAY_ENV, "CACHE_URL": self.redis.url, **env}
            self.instances: dict[str, Instance] = {}
            for name in (f"gw{n}" for n in range(1, instances + 1)):  # one after another: each starts
                # within start()'s bound even on a busy machine
                gw = start_gateway(
                    self.upstream.url,
                    logs / f"{name}.log",
                    "--workers",
                    str(workers),
                    **self.instance_env(name),
                )
                self.instances[name] = Instance(name, urlsplit(gw.url).port or 0, gw.process)
                self.stack.callback(self.halt, name)
            self.balancer = Balancer({name: i.port for name, i in self.instances.items()}, logs)
            self.stack.callback(self.balancer.stop)
        except BaseException:
            self.stack.close()
            raise

    def instance_env(self, name: str) -> dict[str, str]:
        # the workers' metrics files in a directory of the instance's own, emptied at each start
        return {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.logs / f"metrics-{name}")}

    def halt(self, name: str) -> None:
        process = self.instances[name].process
        if process.proc.poll() is None:
            stop(process)

    def close(self) -> None:
        self.stack.close()

    def replace(self, name: str, pre_stop: float, drain: bool = True) -> None:
        """What Kubernetes does to a pod it replaces: out of the balancer, the preStop pause, SIGTERM, the
        requests in flight finish, exit; then a new one, taking traffic once its /readyz checks pass."""
        instance = self.instances[name]
        left = time.monotonic()
        if drain:
            self.balancer.set_state(name, "drain")
            time.sleep(pre_stop)
        instance.process.proc.send_signal(signal.SIGTERM)
        instance.exits.append(instance.process.proc.wait(timeout=60))
        self.relaunch(instance, left)

    def kill(self, name: str) -> tuple[float, float]:
        """SIGKILL to every process of the instance (a container killed). When the signals were sent, and
        when the last of its processes was gone (its sockets closed): dying takes a moment on a busy
        machine, and until then the kernel still accepts connections for it."""
        instance = self.instances[name]
        pids = pids_of(instance.process.proc.pid)
        signalled = time.perf_counter()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: all(gone(pid) for pid in pids), f"{name}'s processes gone", 10, 0.001)
        dead = time.perf_counter()
        instance.exits.append(instance.process.proc.wait(timeout=10))
        return signalled, dead

    def relaunch(self, instance: Instance, left: float) -> None:
        """The instance started again on its port, back in the balancer once its checks pass."""
        args = ["serve", "--port", str(instance.port), "--workers", str(self.workers)]
        log = self.logs / f"{instance.name}-{len(instance.exits)}.log"
        env = gateway_env(self.upstream.url, **self.instance_env(instance.name))
        instance.process = start(args, instance.port, log, "/healthz", env)
        self.balancer.set_state(instance.name, "ready")
        self.balancer.wait_until(instance.name, "UP")
        instance.out_s.append(round(time.monotonic() - left, 2))


# --- the load --------------------------------------------------------------------------------------------


def queries() -> list[str]:
    """bench/soak.py's mix, each query with the numbers of PAGES."""
    return [text % n if "%d" in text else text for n in PAGES for _, text in QUERIES]


def single_cases(count: int = 24) -> list[str]:
    """Queries of one case each: one upstream call, little CPU (so that, with the upstream slowed down,
    many requests are in flight at once without the gateways' CPU being the bottleneck)."""
    (text,) = [text for name, text in QUERIES if name == "case"]
    return [text % n for n in range(1, count + 1)]


def content(answer: dict[str, Any]) -> tuple[Any, list[bytes]]:
    """What must not change between two answers to one query: the data, and the errors in any order."""
    errors = sorted(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in answer.get("errors") or [])
    return answer.get("data"), errors


@dataclass
class Sample:
    rid: str  # the X-Request-ID it was sent with
    query: int
    started: float  # time.perf_counter()
    ended: float
    failure: str = ""  # empty when answered as expected
    calls: int = 0  # extensions.upstream
    cache_hits: int = 0
    shared_calls: int = 0


@dataclass
class Expected:
    answers: list[tuple[Any, list[bytes]]]
    needed: list[int]  # upstream answers each query used the first time (calls + shared calls + cache hits)


def warm(url: str, texts: list[str]) -> Expected:
    """Each query once, one after another: the answers later ones must equal (and the shared cache, warm)."""
    answers, needed = [], []
    with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT) as client:
        for text in texts:
            response = client.post("/graphql", json={"query": text}, headers=AUTH)
            response.raise_for_status()
            answer = response.json()
            if not answer.get("data"):
                raise RuntimeError(f"no data for {text}: {answer}")
            upstream = answer["extensions"]["upstream"]
            answers.append(content(answer))
            needed.append(upstream["calls"] + upstream["sharedCalls"] + upstream["cacheHits"])
    return Expected(answers, needed)


@dataclass
class Load:
    """`concurrency` clients, one connection each, sending `rate` queries a second in all (each client at
    its share, later when answers are slower) until `deadline` or until `stop` is set."""

    url: str
    texts: list[str]
    expected: Expected
    rate: float
    concurrency: int
    deadline: float  # time.perf_counter()
    stop: threading.Event = field(default_factory=threading.Event)
    turn: Iterator[int] = field(default_factory=lambda: itertools.count())

    def over(self) -> bool:
        return self.stop.is_set() or time.perf_counter() >= self.deadline

    async def client(self) -> list[Sample]:
        samples = []
        every = self.concurrency / self.rate
        # A connection per request: HAProxy answers a request that fails on a gateway with a 502 and logs it
        # with the gateway's name; on a kept-alive connection it would close it without a word (as a server
        # closes an idle one) and log nothing.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.url, timeout=CLIENT_TIMEOUT, limits=limits) as client:
            due = time.perf_counter()
            while not self.over():
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                due += every
                n = next(self.turn)
                index = n % len(self.texts)
                sample = Sample(f"r{n}", index, time.perf_counter(), 0.0)
                headers = {**AUTH, "X-Request-ID": sample.rid}
                try:
                    response = await client.post(
                        "/graphql", json={"query": self.texts[index]}, headers=headers
                    )
                except httpx.HTTPError as exc:
                    sample.failure = type(exc).__name__
                else:
                    self.check(sample, response)
                sample.ended = time.perf_counter()
                samples.append(sample)
        return samples

    def check(self, sample: Sample, response: httpx.Response) -> None:
        if response.status_code != 200:
            sample.failure = f"HTTP {response.status_code}"
            return
        answer = response.json()
        upstream = (answer.get("extensions") or {}).get("upstream") or {}
        sample.calls = upstream.get("calls", 0)
        sample.cache_hits = upstream.get("cacheHits", 0)
        sample.shared_calls = upstream.get("sharedCalls", 0)
        if content(answer) != self.expected.answers[sample.query]:
            sample.failure = "different answer"

    async def run(self) -> list[Sample]:
        results = await asyncio.gather(*(self.client() for _ in range(self.concurrency)))
        return sorted((s for r in results for s in r), key=lambda s: s.started)


def data_calls(upstream: Upstream) -> int:
    """Upstream requests the demo logged with a caller's credential: the gateways' data calls (their
    /readyz checks go without one under AUTH_MODE=passthrough, and are not counted)."""
    return sum(1 for entry in upstream.requests() if entry["authorized_as"] is not None)


# --- a run -----------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    mode: str
    duration_s: float  # of the load
    instances: int
    workers: int
    rate: float
    concurrency: int
    gateway_env: dict[str, str]
    upstream_latency_ms: float
    sent: int
    answered: int
    failed: int
    failures: dict[str, int]  # by what happened: HTTP status, transport error, different answer
    p50_ms: float
    p99_ms: float
    max_ms: float
    restarts: int
    exits: dict[str, list[int]]  # exit status of each stop, per gateway (-9: killed)
    out_s: dict[str, list[float]]  # seconds each stop kept it out of the balancer
    served: dict[str, int]  # answered requests per gateway (HAProxy's log)
    balancer: dict[str, dict[str, int]]  # HAProxy's counters per gateway during the load
    upstream_needed: int  # upstream answers the answered queries used
    upstream_calls: int  # of them, fetched from the upstream (extensions.upstream.calls)
    upstream_logged: int  # data calls the demo upstream logged during the load
    saved: int  # answers the shared cache gave: upstream_needed - upstream_calls
    expected_saved: int  # what each query needed before the load (cold), times its answers
    killed: str = ""
    kill_ms: float = 0.0  # from SIGKILL until the last of its processes was gone
    in_flight_at_kill: int = 0  # sent to the killed gateway by HAProxy, unanswered meanwhile
    failed_on_killed: int = 0  # failed requests HAProxy had sent to the killed gateway


def run(
    mode: str,
    duration: float,
    *,
    instances: int = 3,
    workers: int = 2,
    rate: float = 200.0,
    concurrency: int = 16,
    pre_stop: float = 1.0,
    gap: float = 1.0,
    rounds: int | None = None,
    kill_after: float | None = None,
    upstream_latency_ms: float = 0.0,
    texts: list[str] | None = None,
    drain: bool = True,
    logs: Path | None = None,
    **env: str,
) -> RunResult:
    """One rehearsal, `mode` "rolling" or "kill", with fresh processes (all stopped at the end).

    rolling: gateways replaced one after another, `gap` seconds apart, until the load ends (`duration`
    seconds), or `rounds` rounds and then `gap` seconds more of load. kill: SIGKILL to one gateway after
    `kill_after` seconds (default: half the duration), started again; with `kill_after` the load ends `gap`
    seconds after it is back. `upstream_latency_ms` slows every upstream answer (the demo's faults); `texts`
    are the queries sent in turn (default `queries()`). Without `drain`, a gateway gets SIGTERM while still
    in the balancer (no preStop pause): the contrast that shows what the pause is for."""
    logs = logs or Path(tempfile.mkdtemp(prefix="casegraph-rolling-"))
    logs.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(instances, workers, logs, **env)
    try:
        texts = texts or queries()
        expected = warm(cluster.balancer.url, texts)
        if upstream_latency_ms:
            cluster.upstream.fault(latency_ms=upstream_latency_ms)
        cluster.upstream.reset()
        before = cluster.balancer.stats()
        load = Load(cluster.balancer.url, texts, expected, rate, concurrency, time.perf_counter() + duration)
        kill: dict[str, Any] = {}

        def rolling() -> None:
            names = list(cluster.instances)
            for step in itertools.count():
                if load.over() or (rounds is not None and step == rounds * len(names)):
                    return
                cluster.replace(names[step % len(names)], pre_stop, drain)
                time.sleep(gap)

        def killing() -> None:
            time.sleep(duration / 2 if kill_after is None else kill_after)
            name = list(cluster.instances)[len(cluster.instances) // 2]
            left = time.monotonic()
            kill["name"] = name
            kill["signalled"], kill["dead"] = cluster.kill(name)
            cluster.balancer.wait_until(name, "DOWN")
            cluster.relaunch(cluster.instances[name], left)
            time.sleep(gap)

        def chore_done(task: asyncio.Future[None]) -> None:
            if task.exception() is not None or rounds is not None or kill_after is not None:
                load.stop.set()

        async def both() -> tuple[list[Sample], float]:
            started = time.perf_counter()
            chore = asyncio.ensure_future(asyncio.to_thread(rolling if mode == "rolling" else killing))
            chore.add_done_callback(chore_done)
            try:
                samples = await load.run()
                return samples, time.perf_counter() - started
            finally:
                load.stop.set()
                await chore  # a restart under way finishes (after the load: not counted)

        samples, elapsed = asyncio.run(both())
        logged = data_calls(cluster.upstream)
        after = cluster.balancer.stats()
        lines = cluster.balancer.requests({s.rid for s in samples if not s.failure})
    finally:
        cluster.close()

    server = {s.rid: lines.get(s.rid, {}).get("server", "") for s in samples}
    with (logs / "requests.jsonl").open("w") as out:  # every request, for a look afterwards
        for s in samples:
            out.write(json.dumps({**asdict(s), "server": server[s.rid], "haproxy": lines.get(s.rid)}) + "\n")
        out.write(json.dumps({"kill": kill}) + "\n")
    answered = [s for s in samples if not s.failure]
    latencies = [(s.ended - s.started) * 1000 for s in samples]
    counters = ("stot", "econ", "eresp", "wretr", "wredis", "hrsp_5xx", "chkdown")
    result = RunResult(
        mode=mode if drain else f"{mode} without drain",
        duration_s=round(elapsed, 1),
        instances=instances,
        workers=workers,
        rate=rate,
        concurrency=concurrency,
        gateway_env={**GATEWAY_ENV, **env},
        upstream_latency_ms=upstream_latency_ms,
        sent=len(samples),
        answered=len(answered),
        failed=len(samples) - len(answered),
        failures=dict(Counter(s.failure for s in samples if s.failure)),
        p50_ms=round(percentile(latencies, 50), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        max_ms=round(max(latencies, default=0.0), 2),
        restarts=sum(len(i.exits) for i in cluster.instances.values()),
        exits={n: i.exits for n, i in cluster.instances.items()},
        out_s={n: i.out_s for n, i in cluster.instances.items()},
        served=dict(sorted(Counter(server[s.rid] for s in answered).items())),
        balancer={
            name: {c: int(after[name][c] or 0) - int(before[name][c] or 0) for c in counters}
            for name in cluster.instances
        },
        upstream_needed=sum(s.calls + s.shared_calls + s.cache_hits for s in answered),
        upstream_calls=sum(s.calls for s in answered),
        upstream_logged=logged,
        saved=sum(s.cache_hits for s in answered),
        expected_saved=sum(expected.needed[s.query] for s in answered),
    )
    if kill:
        name, signalled, dead = kill["name"], kill["signalled"], kill["dead"]
        result.killed = name
        result.kill_ms = round((dead - signalled) * 1000, 1)
        result.in_flight_at_kill = sum(
            1 for s in samples if server[s.rid] == name and s.started < dead and s.ended > signalled
        )
        result.failed_on_killed = sum(1 for s in samples if s.failure and server[s.rid] == name)
    return result


# --- the report ------------------------------------------------------------------------------------------


def describe(run: dict[str, Any]) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in run["gateway_env"].items())
    slow = (
        f", upstream answers delayed {run['upstream_latency_ms']:.0f} ms"
        if run["upstream_latency_ms"]
        else ""
    )
    return (
        f"{run['instances']} × `casegraph serve --workers {run['workers']}`, {run['rate']:.0f} queries/s over "
        f"{run['concurrency']} connections for {run['duration_s']:.0f} s, {run['queries']}; {settings}{slow}"
    )


def report(data: dict[str, Any]) -> str:
    runs = data["runs"]
    lines = [
        f"# Rolling restart rehearsal {data['started']}",
        "",
        f"Machine: {data['host']}, {data['cores']} cores (load average {data['load'][0]:.1f} at the start, "
        f"{data['load'][1]:.1f} at the end), Python {data['python']}, {data['haproxy']}, {data['redis']}. "
        "Every process on 127.0.0.1: one redis-server, the demo upstream, the gateways with the same "
        f"CACHE_URL, HAProxy in front checking each one's `/readyz` every {CHECK_INTERVAL_MS} ms (2 failures: "
        "out, 2 passes: back), retrying a refused connection on another gateway, never a request that reached "
        "one. Each answer is compared with the one its query got before the load (data and errors).",
        "",
        *[f"- **{r['mode']}**: {describe(r)}." for r in runs],
        f"- rolling: each gateway in turn leaves the balancer (HAProxy `drain`, as a pod leaves the Service's "
        f"endpoints), {data['pre_stop_s']} s later gets SIGTERM, finishes its requests and exits, is started "
        "again and rejoins once its checks pass; round after round until the load ends.",
        "- kill: at mid-run every process of one gateway gets SIGKILL; HAProxy takes it out when its checks fail; "
        "it is started again. The cache is off and the upstream slowed down so that requests are in flight "
        "when it dies (with the warm cache an answer takes a few ms and a kill catches one or none).",
        *(
            [
                "- rolling without drain: the same restarts, but SIGTERM comes while the gateway is still in the "
                "balancer (no preStop pause): what the pause is for."
            ]
            if any(r["mode"] == "rolling without drain" for r in runs)
            else []
        ),
        "",
        "| run | sent | answered | failed | p50 ms | p99 ms | max ms | stops (exit status) | out of the balancer, s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        exits = "; ".join(f"{n}: {', '.join(map(str, e))}" for n, e in r["exits"].items() if e)
        outs = "; ".join(f"{n}: {', '.join(map(str, o))}" for n, o in r["out_s"].items() if o)
        lines.append(
            f"| {r['mode']} | {r['sent']} | {r['answered']} | {r['failed']} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['max_ms']} | {r['restarts']} ({exits}) | {outs} |"
        )
    lines += [
        "",
        "Upstream answers the answered queries used, and where they came from (`extensions.upstream` of each "
        "answer; the demo upstream's own log of data requests is the check):",
        "",
        "| run | upstream answers used | fetched from the upstream | demo upstream logged | from the shared cache (saved) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        lines.append(
            f"| {r['mode']} | {r['upstream_needed']} | {r['upstream_calls']} | {r['upstream_logged']} "
            f"| {r['saved']} ({r['saved'] / max(1, r['upstream_needed']):.1%}) |"
        )
    lines += [
        "",
        "HAProxy's counters per gateway during the load (answered: from its log of each request):",
        "",
        "| run | gateway | answered | sessions | connection errors | response errors | retries | redispatches | checks failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        for name, c in r["balancer"].items():
            lines.append(
                f"| {r['mode']} | {name} | {r['served'].get(name, 0)} | {c['stot']} | {c['econ']} "
                f"| {c['eresp']} | {c['wretr']} | {c['wredis']} | {c['chkdown']} |"
            )
    kill = next((r for r in runs if r["mode"] == "kill"), None)
    if kill:
        failures = ", ".join(f"{k}: {v}" for k, v in kill["failures"].items()) or "none"
        lines += [
            "",
            f"Kill run: {kill['killed']} got SIGKILL, and its last process was gone {kill['kill_ms']} ms later; "
            f"{kill['in_flight_at_kill']} requests were in flight on it meanwhile (sent to it by HAProxy, not "
            f"answered); {kill['failed']} requests failed ({failures}), "
            f"{kill['failed_on_killed']} of them sent to {kill['killed']}.",
        ]
    return "\n".join(lines) + "\n"


def version(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per run (default 60)")
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="worker processes per gateway")
    parser.add_argument("--rate", type=float, default=200.0, help="queries per second")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pre-stop", type=float, default=1.0, help="seconds between drain and SIGTERM")
    parser.add_argument(
        "--contrast", action="store_true", help="a third run: the rolling restart without draining first"
    )
    args = parser.parse_args()
    if not 5 <= args.duration <= 600 or not 2 <= args.instances <= 8 or not 1 <= args.rate <= 2000:
        parser.error("--duration 5..600 s, --instances 2..8, --rate 1..2000")

    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="casegraph-rolling-"))
    started, load = datetime.now(UTC), os.getloadavg()[0]
    common = dict(
        instances=args.instances,
        workers=args.workers,
        rate=args.rate,
        concurrency=args.concurrency,
        pre_stop=args.pre_stop,
    )
    plans: list[tuple[str, dict[str, Any]]] = [
        ("rolling", {"CACHE_TTL": "30"}),  # the default
        ("kill", {"CACHE_TTL": "0", "upstream_latency_ms": 100.0, "texts": single_cases()}),
    ]
    if args.contrast:
        plans.append(("rolling", {"CACHE_TTL": "30", "drain": False}))
    runs = []
    for n, (mode, plan) in enumerate(plans):
        shown = {k: v for k, v in plan.items() if k != "texts"}
        print(f"rehearsal: {mode} {shown}, {args.duration:.0f} s (logs in {logs / str(n)})", flush=True)
        result = asdict(run(mode, args.duration, logs=logs / str(n), **common, **plan))
        texts = plan.get("texts")
        result["queries"] = (
            f"{len(texts)} single-case queries"
            if texts
            else f"a mix of {len(queries())} queries (bench/soak.py's)"
        )
        runs.append(result)
    data = {
        "started": f"{started:%Y-%m-%d %H:%M} UTC",
        "host": platform.node() or "host",
        "cores": os.cpu_count(),
        "load": [load, os.getloadavg()[0]],
        "python": platform.python_version(),
        "haproxy": version([haproxy_binary(), "-v"]).split(" - ")[0],
        "redis": version(["redis-server", "--version"]).split(" sha=")[0],
        "pre_stop_s": args.pre_stop,
        "runs": runs,
    }
    stem = RESULTS / f"rolling-{started:%Y-%m-%d}-{data['host']}"
    stem.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    stem.with_suffix(".md").write_text(report(data))
    print(report(data))
    rolling, kill = runs[:2]
    return 0 if rolling["failed"] == 0 and kill["failed"] <= kill["in_flight_at_kill"] else 1


if __name__ == "__main__":
    sys.exit(main())
