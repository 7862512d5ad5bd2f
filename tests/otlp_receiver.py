"""A small OTLP/HTTP trace receiver, run as its own process by the tests and the benchmark:

    python -m tests.otlp_receiver --port 4318

    POST   /v1/traces   an `ExportTraceServiceRequest` (protobuf, gzip or not), decoded with opentelemetry-proto
    GET    /spans       the spans received so far, flattened: ids in hex, attributes, events, resource
    GET    /requests    every request received, whole (protobuf's own JSON mapping of the message)
    DELETE /spans       forget them
    GET    /healthz     200, with how many export requests and spans came in

Requests are only decoded when they come in; the conversion to JSON waits for a GET, so that under the
benchmark's load the receiver costs the machine little.
"""

from __future__ import annotations

import argparse
import gzip
import zlib
from typing import Any

import uvicorn
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PROTOBUF = "application/x-protobuf"


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind) if kind else None


def attributes_of(items: Any) -> dict[str, Any]:
    return {item.key: value_of(item.value) for item in items if isinstance(item, KeyValue)}


def flatten(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "trace_state": span.trace_state,
                        "name": span.name,
                        "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").lower(),
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                        "attributes": attributes_of(span.attributes),
                        "events": [
                            {"name": event.name, "attributes": attributes_of(event.attributes)}
                            for event in span.events
                        ],
                        "status": {"code": span.status.code, "message": span.status.message},
                        "scope": scope_spans.scope.name,
                        "resource": resource,
                    }
                )
    return spans


def create_app() -> Starlette:
    received: list[ExportTraceServiceRequest] = []
    counted = [0]  # spans received since the last DELETE

    async def traces(request: Request) -> Response:
        body = await request.body()
        encoding = request.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if request.headers.get("content-type") != PROTOBUF:
            return Response(b"protobuf only", 415)
        message = ExportTraceServiceRequest.FromString(body)
        received.append(message)
        counted[0] += sum(len(s.spans) for r in message.resource_spans for s in r.scope_spans)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

    async def spans(request: Request) -> Response:
        return JSONResponse([span for message in received for span in flatten(message)])

    async def requests(request: Request) -> Response:
        return JSONResponse([MessageToDict(message) for message in received])

    async def clear(request: Request) -> Response:
        received.clear()
        counted[0] = 0
        return Response(status_code=204)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "requests": len(received), "spans": counted[0]})

    return Starlette(
        routes=[
            Route("/v1/traces", traces, methods=["POST"]),
            Route("/spans", spans, methods=["GET"]),
            Route("/spans", clear, methods=["DELETE"]),
            Route("/requests", requests, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
