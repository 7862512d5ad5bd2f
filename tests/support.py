"""Helpers to run the demo upstream and gateways as real processes on loopback, and talk to them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

DEMO_TOKEN = "demo-token"  # the demo upstream's default token (gateway.demo.DEMO_TOKEN)
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pids_of(root_pid: int) -> list[int]:
    """The process and its children, theirs and so on (uvicorn's workers and multiprocessing's helper)."""
    out = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        for pid in children.read_text().split():
            out.extend(pids_of(int(pid)))
    return out


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the process and all its descendants: a `--workers` supervisor killed alone leaves its
    workers running."""
    for pid in pids_of(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


@dataclass
class Process:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start(
    args: list[str],
    port: int,
    log_path: Path,
    health: str,
    env: dict[str, str] | None = None,
    module: str = "gateway.cli",
) -> Process:
    """`python -m module *args` (the casegraph CLI unless told), once `health` on `port` answers 200."""
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    # a bound, not a measurement: worker processes start slowly on a busy machine (20 s was not always enough)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + health, timeout=1).status_code == 200:
                return Process(url, proc, log_path)
        except httpx.TransportError:
            time.sleep(0.05)
    kill_tree(proc)
    raise RuntimeError(f"{args[0]} did not start:\n{log_path.read_text()}")


def end(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL to it and its descendants if it has not exited 10 s later."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        kill_tree(proc)


def stop(process: Process) -> None:
    end(process.proc)


class Upstream:
    """The demo upstream process, with its request log."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.url = process.url
        self.client = httpx.Client(base_url=process.url, timeout=10)

    def requests(self) -> list[dict[str, Any]]:
        return self.client.get("/_demo/requests").json()["requests"]

    def reset(self) -> None:
        self.client.delete("/_demo/requests").raise_for_status()

    def get(self, path: str, token: str = DEMO_TOKEN, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})

    def fault(self, **rule: Any) -> None:
        """Add a fault rule (gateway/demo/faults.py), e.g. `fault(status=503, paths=["/api/v2/cases"], times=2)`."""
        self.client.post("/_demo/faults", json=rule).raise_for_status()

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules, each with how often it fired."""
        return self.client.get("/_demo/faults").json()["rules"]

    def clear_faults(self) -> None:
        self.client.delete("/_demo/faults").raise_for_status()

    @contextmanager
    def clean(self) -> Iterator[Upstream]:
        """No fault rules and an empty request log; the rules a test adds are removed after it too."""
        self.clear_faults()
        self.reset()
        try:
            yield self
        finally:
            self.clear_faults()


class Gateway:
    """A gateway process; `query` posts a GraphQL request and returns the decoded answer."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.url = process.url
        self.client = httpx.Client(base_url=process.url, timeout=30)

    def query(
        self, query: str, variables: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers=AUTH if headers is None else headers,
        )
        assert response.headers["content-type"].startswith("application/"), response.text
        return response.json()


def gateway_env(upstream_url: str, **extra: str) -> dict[str, str]:
    return {
        "V1_URL": upstream_url,
        "V2_URL": upstream_url,
        "AUTH_MODE": "passthrough",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "text",  # the tests read log lines as text (test_observability.py reads JSON)
        **extra,
    }


# --- shared by test_graphql_http.py, test_observability.py and test_shutdown.py ----------------------------


def wait_for(condition: Any, what: str, limit: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until `condition()` is truthy and return its value; at most `limit` seconds (a bound, not a
    measurement)."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {limit}s: {what}")
        time.sleep(interval)


def start_upstream(log_path: Path) -> Upstream:
    """A demo upstream process of its own on a free port (stop it with `stop(upstream.process)`)."""
    port = free_port()
    return Upstream(start(["demo-upstream", "--port", str(port)], port, log_path, "/_demo/healthz"))


def start_receiver(log_path: Path) -> Process:
    """An OTLP/HTTP trace receiver process (`tests/otlp_receiver.py`) on a free port."""
    port = free_port()
    return start(["--port", str(port)], port, log_path, "/healthz", module="tests.otlp_receiver")


def start_gateway(upstream_url: str, log_path: Path, *args: str, **env: str) -> Gateway:
    """`casegraph serve` on a free port in front of `upstream_url`, answering /healthz: `args` are more `serve`
    arguments, `env` settings on top of `gateway_env`."""
    port = free_port()
    process = start(
        ["serve", "--port", str(port), *args], port, log_path, "/healthz", gateway_env(upstream_url, **env)
    )
    return Gateway(process)


def start_gateways_with(
    upstream_url: str, log_dir: Path, specs: dict[str, tuple[list[str], dict[str, str]]]
) -> dict[str, Gateway]:
    """Gateway processes started side by side: name -> (extra `serve` arguments, environment on top of
    `gateway_env`). If one fails to start, the others are stopped and the failure raised."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> Gateway:
        extra_args, env = specs[name]
        return start_gateway(upstream_url, log_dir / f"{name}.log", *extra_args, **env)

    with ThreadPoolExecutor(max(len(specs), 1)) as pool:
        futures = {name: pool.submit(one, name) for name in specs}
    started = {name: f.result() for name, f in futures.items() if f.exception() is None}
    failures = [f.exception() for f in futures.values() if f.exception() is not None]
    if failures:
        stop_gateways(started.values())
        raise failures[0]  # type: ignore[misc]
    return started


class Metrics:
    """One scrape of a gateway's `GET /metrics`, parsed by prometheus-client's own parser."""

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    @classmethod
    def of(cls, gateway: Gateway) -> Metrics:
        response = gateway.client.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return cls(response.text)

    def get(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 when it was never incremented: prometheus-client only
        shows a labelled child once it exists)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample of `name`, by its labels."""
        return {labels: value for (sample, labels), value in self.samples.items() if sample == name}

    def labelled(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """Every non-zero sample of `name`, keyed by the values of the labels `keys`."""
        found = {}
        for labels, value in self.series(name).items():
            if value:
                as_dict = dict(labels)
                found[tuple(as_dict[key] for key in keys)] = value
        return found


def stop_gateways(gateways: Any) -> None:
    """Stop several gateway processes (a dict of them, or any iterable) side by side: each may take a moment
    to drain and exit."""
    from concurrent.futures import ThreadPoolExecutor

    processes = [gw.process for gw in (gateways.values() if isinstance(gateways, dict) else gateways)]
    with ThreadPoolExecutor(max(len(processes), 1)) as pool:
        list(pool.map(stop, processes))


REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (`make test` installs it)"
)


class RedisServer:
    """A throwaway redis-server: no persistence, loopback only, stopped by the fixture that started it."""

    def __init__(self, log_path: Path, *args: str) -> None:
        """`args`: more redis-server arguments (after the ones here, so they take precedence)."""
        assert REDIS_SERVER is not None
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = redis.Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start:\n{log_path.read_text()}") from None
                time.sleep(0.02)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            end(self.proc)
        self.log.close()


@contextmanager
def running_redis(log_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the caller's own while the block runs (the test is skipped where there is none)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (`make test` installs it)")
    server = RedisServer(log_path)
    try:
        yield server
    finally:
        server.stop()


# --- system tools --------------------------------------------------------------------------------------------

# `make test` installs the programs its tests run (see the Makefile) and sets CASEGRAPH_TOOLS=required; CI
# systems set CI. Either way a missing program is a failure.
TOOLS_REQUIRED = os.environ.get("CASEGRAPH_TOOLS") == "required" or bool(os.environ.get("CI"))


def system_tool(name: str, install: str) -> str:
    """The path of a program the tests run, from the virtual environment (tools installed by pip) or PATH.
    When it is missing the test fails under `make test` or CI, and is skipped otherwise (as with
    `.venv/bin/python -m pytest` on a machine without it), saying how to install it."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed: {install}"
        if TOOLS_REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return found


PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()  # filled by tests/conftest.py's hook


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test that requested a fixture has failed (for that fixture's teardown)."""
    return any(report.failed for report in request.node.stash.get(PHASE_REPORTS, {}).values())


def check_document(schema: Any, document: Any, variables: Any, limits: Any) -> list[Any]:
    """The limits' errors for every operation of a parsed document (all @include/@skip true), as the Planner
    would find them one operation at a time."""
    from gateway.planning.checks import check
    from gateway.planning.documents import Document
    from gateway.planning.plan import OperationPlan

    planned = Document(document)
    errors: list[Any] = []
    for operation in planned.operations:
        plan = OperationPlan(schema, planned, operation, dict.fromkeys(planned.switches, True))
        errors.extend(
            e for e in check(plan, variables, limits) if e.message not in {x.message for x in errors}
        )
    return errors
