"""`casegraph demo` as a person runs it: ports from flags or PORT / UPSTREAM_PORT, "ready" only once both
servers listen, a busy port one clear line and exit code 2; `casegraph demo-upstream` reads HOST / PORT too;
bare `casegraph` prints its help, `casegraph serve --help` names the settings it reads and where all of them
are; every flag of every command says what it does and its default; `make help` lists the Makefile's
targets in aligned columns."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gateway.cli import CONFIGURATION, SERVE_SETTINGS, parser
from gateway.ops.config import Settings
from tests.support import free_port, system_tool, wait_for

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "gateway.cli", "demo"]


@contextmanager
def busy_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def run_casegraph(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PORT", "UPSTREAM_PORT", "HOST")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **env},
        cwd=ROOT,
    )


def run_demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_casegraph("demo", *args, **env)


@pytest.mark.parametrize(
    ("which", "flag", "variable"),
    [("gateway", "--port", "PORT"), ("demo upstream", "--upstream-port", "UPSTREAM_PORT")],
)
def test_a_busy_port_is_one_line_naming_the_flag_and_exit_code_2(which, flag, variable):
    with busy_port() as port:
        other = "--upstream-port" if flag == "--port" else "--port"
        result = run_demo(flag, str(port), other, str(free_port()))
    assert result.returncode == 2
    assert result.stdout == ""  # no banner, no "ready"
    assert result.stderr == (
        f"casegraph demo: port {port} on 127.0.0.1 for the {which} is in use: "
        f"choose another with {flag} N (or {variable}=N)\n"
    )


def test_a_busy_port_from_the_environment_is_reported_the_same_way():
    with busy_port() as port:
        result = run_demo(PORT=str(port), UPSTREAM_PORT=str(free_port()))
    assert result.returncode == 2
    assert result.stderr.endswith("is in use: choose another with --port N (or PORT=N)\n")


def test_a_bad_upstream_port_variable_is_a_configuration_error():
    result = run_demo(UPSTREAM_PORT="eighty")
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr == "casegraph: invalid configuration: UPSTREAM_PORT: 'eighty' is not a port (1-65535)\n"
    )


def test_the_demo_takes_its_ports_from_the_environment_and_says_ready_once_both_listen(logs_dir: Path):
    port, upstream_port = free_port(), free_port()
    out_path, err_path = logs_dir / "demo-command.out.log", logs_dir / "demo-command.log"
    environ = {k: v for k, v in os.environ.items() if k not in ("HOST",)}
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            COMMAND,
            stdout=out,
            stderr=err,
            env={**environ, "PORT": str(port), "UPSTREAM_PORT": str(upstream_port)},
            cwd=ROOT,
        )
    try:
        banner = wait_for(
            lambda: "ready" in out_path.read_text() and out_path.read_text(), "the ready banner", 30
        )
        # as soon as it says so, both answer
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{upstream_port}/_demo/healthz", timeout=5).status_code == 200
        assert banner.splitlines()[0] == (
            f"casegraph demo ready: demo upstream on http://127.0.0.1:{upstream_port}, "
            f"gateway on http://127.0.0.1:{port}"
        )
        # the banner's curl command, read as a shell reads it, asks the gateway (which sends the demo token
        # upstream: the caller needs no credential)
        (curl,) = re.findall(r"curl: +(curl .*)", banner)
        argv = shlex.split(curl)
        assert argv[:3] == ["curl", "-s", f"http://127.0.0.1:{port}/graphql"] and argv[5] == "-d"
        answer = httpx.post(argv[2], content=argv[6], headers=[tuple(argv[4].split(": "))], timeout=30)
        assert answer.json()["data"]["cases"]["pageInfo"] == {"count": 300}
        proc.send_signal(signal.SIGINT)  # Ctrl-C stops both, cleanly
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err_path.read_text()
    assert out_path.read_text().count("ready") == 1


def test_the_demo_upstream_alone_reads_host_and_port_like_the_others(logs_dir: Path):
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k != "HOST"}
    # 127.0.0.2 is loopback too, and no default: the demo upstream listens where HOST and PORT say
    with (logs_dir / "demo-upstream-env.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "demo-upstream"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**environ, "HOST": "127.0.0.2", "PORT": str(port)},
        )
    try:
        health = f"http://127.0.0.2:{port}/_demo/healthz"

        def answers() -> bool:
            try:
                return httpx.get(health, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, "the demo upstream on HOST:PORT", 60)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/_demo/healthz", timeout=1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_bad_port_variable_stops_the_demo_upstream_with_one_line():
    result = run_casegraph("demo-upstream", PORT="eighty")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "casegraph: invalid configuration: PORT: 'eighty' is not a port (1-65535)\n"


def test_bare_casegraph_prints_its_help():
    result = run_casegraph()
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == parser().format_help()
    for command in ("serve", "demo", "demo-upstream", "export-schema"):
        assert f"    {command}" in result.stdout
    assert CONFIGURATION in result.stdout


def test_serve_help_names_the_settings_it_reads_and_where_every_setting_is():
    result = run_casegraph("serve", "--help")
    assert result.returncode == 0
    assert SERVE_SETTINGS in result.stdout
    for name in ("V1_URL", "V2_URL", "AUTH_MODE", "UPSTREAM_TOKEN"):
        assert name in SERVE_SETTINGS
    # every variable it names is a setting (gateway/ops/config.py), and the page it points to exists
    named = set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b(?:HOST|PORT)\b", SERVE_SETTINGS))
    assert named - {field.upper() for field in Settings.model_fields} == set()
    assert (ROOT / CONFIGURATION).is_file()


def test_every_flag_of_every_command_has_help_saying_its_default():
    (commands,) = [a for a in parser()._actions if a.dest == "command"]
    missing = []
    for name, command in commands.choices.items():  # type: ignore[union-attr]
        for action in command._actions:
            if action.dest == "help":
                continue
            text = action.help or ""
            if "(default: " not in text:
                missing.append(f"{name} {'/'.join(action.option_strings)}: {text!r}")
    assert missing == []


def test_make_help_lists_every_target_with_what_it_does():
    make = system_tool("make", "apt-get install make")
    result = subprocess.run([make, "--no-print-directory", "help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    phony = re.search(r"^\.PHONY: (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert phony
    listed = dict(re.findall(r"^  make (\S+) +(.+)$", result.stdout, re.M))
    assert sorted(listed) == sorted(phony.group(1).split())
    assert "apt-get" in listed["test"] and "root" in listed["test"]
    assert "ARGS=" in listed["demo"]
    # one column: every description starts where the others do
    starts = {re.match(r"  make \S+ +", line).end() for line in result.stdout.splitlines()}  # type: ignore[union-attr]
    assert len(starts) == 1, result.stdout
