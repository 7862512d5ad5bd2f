"""Helpers to run the demo upstream and gateways as real processes on loopback, and talk to them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEMO_TOKEN = "demo-token"  # the demo upstream's default token (gateway.demo.DEMO_TOKEN)
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start(
    args: list[str], port: int, log_path: Path, health: str, env: dict[str, str] | None = None
) -> Process:
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + health, timeout=1).status_code == 200:
                return Process(url, proc, log_path)
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{args[0]} did not start:\n{log_path.read_text()}")


def stop(process: Process) -> None:
    process.proc.terminate()
    try:
        process.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.proc.kill()


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

    def clear_faults(self) -> None:
        self.client.delete("/_demo/faults").raise_for_status()


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
