"""Logging: one JSON object per line (LOG_FORMAT=json) or plain text, every line of a request carrying its id.

`request_id` holds the id of the request being answered (set by `gateway.http.observe.Observe`); the upstream
client sends it on as `X-Request-ID`, and `RequestIdFilter` puts it on each log record. A JSON line has
`time`, `level`, `logger`, `message`, the `request_id` when there is one, the `trace_id` when the request is
traced (`gateway/ops/tracing.py`), the fields a call passes as `extra={"fields": {...}}`, and `exc` with the
traceback of an exception.

`logging_config` is a `logging.config.dictConfig` dictionary, handed to uvicorn (`log_config`) so that
every worker process, uvicorn's own loggers included, logs the same way.

Nothing here ever formats a token: credentials are `Credential` objects whose repr and str show only a
fingerprint, and the request summary line names no header.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.ops.tracing import current_trace_id

request_id: ContextVar[str | None] = ContextVar("casegraph_request_id", default=None)

_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_tag)s"


def accept_request_id(value: str | None) -> str:
    """A caller's X-Request-ID when it is a sane token (at most 128 characters, no spaces or controls: it
    goes into logs and upstream headers), else a new random one."""
    if value and _ACCEPTED_ID.fullmatch(value):
        return value
    return os.urandom(16).hex()  # 128 random bits, as a uuid4's hex (without its version bits: cheaper)


def one_line(exc: BaseException) -> str:
    """An unexpected exception as one log line: its type, the start of its message and where it was raised.
    Such errors are logged without a traceback: a client that can cause one must not be able to fill the
    log, and the request id on the line ties it to the request."""
    where = ""
    tb = exc.__traceback__
    if tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        path = tb.tb_frame.f_code.co_filename
        where = f" at {path[path.rfind('/gateway/') + 1 :] if '/gateway/' in path else path}:{tb.tb_lineno}"
    return f"{type(exc).__name__}: {str(exc)[:200]}{where}"


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (`request_id`, and `request_tag` for text), and the
    current trace id (`trace_id`, None when untraced)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        record.request_id = rid
        record.trace_id = current_trace_id()
        record.request_tag = f" (request {rid})" if rid else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, written with orjson."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            entry["trace_id"] = trace_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_tag"):  # a record that bypassed the handler's filter
            record.request_tag = ""
        return super().format(record)


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """dictConfig for the gateway and uvicorn: one stderr handler, JSON or text, at `level`."""
    formatter = "gateway.ops.logs.JsonFormatter" if fmt == "json" else "gateway.ops.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "gateway.ops.logs.RequestIdFilter"}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's loggers go through the root handler, formatted like the rest
            "uvicorn": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            # httpx logs every request at info; the gateway logs its upstream calls itself (debug, warnings)
            "httpx": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(level: str, fmt: str = "text") -> None:
    """Configure this process's logging (the CLI does it before uvicorn starts)."""
    import logging.config

    logging.config.dictConfig(logging_config(level, fmt))
