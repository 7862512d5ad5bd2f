"""The `casegraph` command: serve, demo, demo-upstream, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import errno
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from gateway.ops.config import ConfigError, load_settings
from gateway.ops.logs import configure_logging, logging_config

SCHEMA_FILE = Path("schema.graphql")


MULTIPROC_ENV = (
    "PROMETHEUS_MULTIPROC_DIR"  # gateway.ops.metrics.MULTIPROC_ENV, read here before it is imported
)


def empty_metrics_dir(path: str) -> None:
    """Empty a PROMETHEUS_MULTIPROC_DIR before the gateway starts: values left by an earlier run would add
    up. Done before anything imports prometheus-client, which opens the process's own files there."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


WORKER_HEALTHCHECK_TIMEOUT = 30  # seconds; see serve()


def metrics_dir_for_workers() -> None:
    """Workers share their metrics through PROMETHEUS_MULTIPROC_DIR (`gateway/ops/metrics.py`): emptied when
    given, else a temporary directory made here and removed at exit. Set before any worker starts."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        path = tempfile.mkdtemp(prefix="casegraph-metrics-")
        os.environ[MULTIPROC_ENV] = path
        atexit.register(shutil.rmtree, path, True)
    empty_metrics_dir(path)


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, which stop it gracefully: no new connections, requests in flight
    given SHUTDOWN_TIMEOUT seconds to finish; then the process exits 0."""
    # The metrics directory is ready before gateway.http.app imports prometheus-client, which reads the variable
    # and opens this process's files there at once. One process keeps its metrics there too when it is set.
    if args.workers > 1:
        metrics_dir_for_workers()
    elif os.environ.get(MULTIPROC_ENV):
        empty_metrics_dir(os.environ[MULTIPROC_ENV])
    from gateway.http.app import create_app
    from gateway.http.server import bounded_protocol
    from gateway.ops import tracing

    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = load_settings(**overrides)
    tracing.exporters()  # an OTEL_* configuration it cannot honour stops it here, before any worker starts
    configure_logging(settings.log_level, settings.log_format)
    common: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,  # the gateway writes its own line per request (gateway/http/observe.py)
        "log_config": logging_config(settings.log_level, settings.log_format),  # in every worker too
        "timeout_graceful_shutdown": settings.shutdown_timeout,  # requests in flight may finish
        # httptools' protocol with the request head bounded in time and size (gateway/http/server.py)
        "http": bounded_protocol(settings.header_timeout, settings.max_header_bytes),
    }
    # uvicorn handles SIGTERM itself (the graceful stop above), then raises it again once it has stopped so
    # that the signal's default action follows: the process would die by SIGTERM (exit status -15 / 143) after
    # a clean stop. Handled here instead: a stop that was asked for is a success. (The supervisor of
    # `--workers` handles its signals itself and returns.)
    signal.signal(signal.SIGTERM, _stopped)
    if settings.metrics_port:
        from gateway.ops.metrics import serve_apart

        try:  # from this process: the app's, or the workers' supervisor
            serve_apart(settings.host, settings.metrics_port)
        except OSError as exc:
            where = f"{settings.host}:{settings.metrics_port}"
            print(f"casegraph: METRICS_PORT: cannot listen on {where}: {exc.strerror}", file=sys.stderr)
            return 2
    if args.workers > 1:
        # Worker processes each build the app from the environment (HOST/PORT given here apply to all).
        os.environ.update({"HOST": settings.host, "PORT": str(settings.port)})
        # uvicorn pings each worker and replaces one that does not answer within timeout_worker_healthcheck
        # (5 s by default), also while it starts: on a busy machine importing the app took longer, and the
        # supervisor killed and restarted its workers forever. A worker that hangs is still replaced.
        uvicorn.run(
            "gateway.http.app:create_app",
            factory=True,
            workers=args.workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
            **common,  # type: ignore[arg-type]
        )
    else:
        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
    return 0


def demo_upstream(args: argparse.Namespace) -> int:
    from gateway.demo import create_app as create_demo
    from gateway.ops.tuning import tune_process

    # a flag, else HOST / PORT as `serve` reads them (the demo upstream's own default port: 8001)
    host = args.host if args.host is not None else os.environ.get("HOST") or "127.0.0.1"
    port = args.port if args.port is not None else env_port("PORT", 8001)
    configure_logging("info", args.log_format)
    app = create_demo(seed=args.seed)
    tune_process(20_000)  # the demo data is long-lived: keep the collector off it
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=logging_config("info", args.log_format),
    )
    return 0


EXAMPLE_CURL = (
    "curl -s {url}/graphql -H 'content-type: application/json' "
    '-d \'{{"query": "{{ cases(perPage: 3) {{ items {{ caseId name priority }} pageInfo {{ count }} }} }}"}}\''
)


class PortBusy(Exception):
    """A port the demo would listen on cannot be had; the message says which flag chooses another."""


def listen(host: str, port: int, what: str, flag: str, variable: str) -> socket.socket:
    """A listening socket, bound before anything starts: a port in use is one line naming the flag (and the
    variable) that changes it, not a traceback after a banner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise PortBusy(
            f"casegraph demo: port {port} on {host} for the {what} {reason}: "
            f"choose another with {flag} N (or {variable}=N)"
        ) from None


def env_port(variable: str, default: int) -> int:
    """A port from the environment variable `variable`, else `default`; anything else is a ConfigError."""
    raw = os.environ.get(variable, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"invalid configuration: {variable}: {raw!r} is not a port (1-65535)")
    return int(raw)


def upstream_port() -> int:
    """`UPSTREAM_PORT` from the environment (the demo's own variable, beside the gateway's PORT), else 8001."""
    return env_port("UPSTREAM_PORT", 8001)


def demo(args: argparse.Namespace) -> int:
    """The demo upstream and the gateway in one process, talking over real HTTP on loopback. Both ports are
    bound first; the banner says "ready" once both servers have started."""
    from gateway.demo import DEMO_TOKEN

    up_port = args.upstream_port if args.upstream_port is not None else upstream_port()
    upstream = f"http://127.0.0.1:{up_port}"
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = load_settings(
        v1_url=upstream,
        v2_url=upstream,
        auth_mode="token",
        upstream_token=DEMO_TOKEN,
        graphiql_headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
        log_format=os.environ.get("LOG_FORMAT", "text"),  # a person is watching: plain lines
        **overrides,
    )
    try:
        sockets = [
            listen("127.0.0.1", up_port, "demo upstream", "--upstream-port", "UPSTREAM_PORT"),
            listen(settings.host, settings.port, "gateway", "--port", "PORT"),
        ]
    except PortBusy as exc:
        print(exc, file=sys.stderr)
        return 2
    from gateway.demo import create_app as create_demo
    from gateway.http.app import create_app  # after the ports: a busy one is told at once

    configure_logging(settings.log_level, settings.log_format)
    common: dict[str, Any] = {
        "log_level": "warning",
        "log_config": logging_config(settings.log_level, settings.log_format),
    }
    servers = [
        uvicorn.Server(uvicorn.Config(create_demo(seed=args.seed), **common)),
        uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                access_log=False,
                timeout_graceful_shutdown=settings.shutdown_timeout,
                **common,
            )
        ),
    ]
    gateway = f"http://{settings.host}:{settings.port}"
    banner = (
        f"casegraph demo ready: demo upstream on {upstream}, gateway on {gateway}\n"
        f"  GraphiQL: open {gateway}/graphql in a browser (its Authorization header holds the demo token)\n"
        f"  curl:     {EXAMPLE_CURL.format(url=gateway)}\n"
        "  Ctrl-C stops both."
    )

    async def run() -> bool:
        tasks = [
            asyncio.create_task(server.serve([sock])) for server, sock in zip(servers, sockets, strict=True)
        ]
        while not all(server.started for server in servers) and not any(task.done() for task in tasks):
            await asyncio.sleep(0.02)
        started = all(server.started for server in servers)
        if started:
            print(banner, flush=True)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:  # one has stopped (a signal, a failed start): the other follows
            server.should_exit = True
        await asyncio.gather(*tasks)
        return started

    # uvicorn raises the signal that stopped it again once stopped; a stop that was asked for (Ctrl-C, SIGTERM)
    # is a success (see `serve`), not a traceback
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
    return 0 if asyncio.run(run()) else 1


def export_schema(args: argparse.Namespace) -> int:
    from gateway.planning.executable import schema_sdl

    sdl = schema_sdl()
    target = Path(args.output)
    if args.check:
        if not target.exists() or target.read_text() != sdl:
            print(f"{target} differs from the schema in code: run `casegraph export-schema`", file=sys.stderr)
            return 1
        print(f"{target} is up to date")
        return 0
    target.write_text(sdl)
    print(f"wrote {target} ({len(sdl.splitlines())} lines)")
    return 0


CONFIGURATION = "docs/configuration.md"  # every setting, with its default

SERVE_SETTINGS = f"""\
settings (environment variables, or a .env file in the working directory):
  V1_URL, V2_URL   base URLs of the v1 and v2 APIs (before /api/v1, /api/v2)
                   (default: http://127.0.0.1:8001, the demo upstream's)
  AUTH_MODE        passthrough: forward each caller's Authorization header (default)
                   token: send UPSTREAM_TOKEN upstream instead
  HOST, PORT       where to listen (the flags override them)
  CACHE_URL        redis://host:6379/0 to share the cache between gateways (default: in memory)
  LOG_LEVEL, LOG_FORMAT, GRAPHIQL, INTROSPECTION, MAX_QUERY_COST ... and the rest:
                   every setting and its default: {CONFIGURATION} in the repository

example, against your own APIs:
  V1_URL=https://v1.example V2_URL=https://v2.example AUTH_MODE=passthrough casegraph serve
"""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="casegraph",
        description=__doc__,
        epilog=f"`casegraph <command> --help` says more; settings: `casegraph serve --help` and {CONFIGURATION}",
    )
    sub = root.add_subparsers(dest="command", metavar="<command>")

    p = sub.add_parser(
        "serve",
        help="serve the gateway (configured by environment variables / .env)",
        description="Serve the gateway in front of the v1 and v2 APIs the settings below point at.",
        epilog=SERVE_SETTINGS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default=None, help="address to listen on (default: $HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port to listen on (default: $PORT, else 8000)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (uvicorn), sharing the port (default: %(default)s)",
    )
    p.set_defaults(run=serve)

    p = sub.add_parser("demo", help="serve the gateway on the embedded demo upstream, with GraphiQL")
    p.add_argument(
        "--host", default=None, help="address the gateway listens on (default: $HOST, else 127.0.0.1)"
    )
    p.add_argument("--port", type=int, default=None, help="the gateway's port (default: $PORT, else 8000)")
    p.add_argument(
        "--upstream-port",
        type=int,
        default=None,
        help="the demo upstream's port, on 127.0.0.1 (default: $UPSTREAM_PORT, else 8001)",
    )
    p.add_argument(
        "--seed", type=int, default=7, help="seed of the generated demo data (default: %(default)s)"
    )
    p.set_defaults(run=demo)

    p = sub.add_parser("demo-upstream", help="serve only the demo upstream (v1 and v2 APIs)")
    p.add_argument("--host", default=None, help="address to listen on (default: $HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port to listen on (default: $PORT, else 8001)")
    p.add_argument(
        "--seed", type=int, default=7, help="seed of the generated demo data (default: %(default)s)"
    )
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log line format (default: %(default)s)",
    )
    p.set_defaults(run=demo_upstream)

    p = sub.add_parser("export-schema", help="write the schema SDL (schema.graphql) from the code")
    p.add_argument(
        "--output", default=str(SCHEMA_FILE), help="the file to write or check (default: %(default)s)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail if the file differs from the code (default: write the file)",
    )
    p.set_defaults(run=export_schema)
    return root


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if args.command is None:  # bare `casegraph`: what it can do
        cli.print_help()
        return 0
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"casegraph: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
