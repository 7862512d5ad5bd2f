"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): how `/graphql` reads a request and in
what media type, with which status and headers, it answers. `gateway/http/endpoint.py` runs the pipeline; this
module is its HTTP edge, with no GraphQL execution in it.

- **Reading**: `read_request` turns an HTTP request into a `GraphQLRequest` (query, operationName, variables,
  extensions, persisted-query hash), or raises `Refusal` saying why not: every refusal is JSON with
  `extensions.code` and the status the draft gives it. GET carries the parameters in the URL (an empty
  parameter is an absent one), POST a JSON object body under `Content-Type: application/json` (media types
  are case-insensitive; a charset must be utf-8).
- **Media type** from `Accept`: `application/graphql-response+json` or `application/json`, whichever the
  client ranks higher (q-values; a type named outright beats one reached by a wildcard, and the draft's
  preferred `application/graphql-response+json` wins a tie, so `*/*` and a missing `Accept` get it); an
  `Accept` allowing neither gets 406. An `Accept` that lists `multipart/mixed` (any parameters, q above 0:
  Apollo Client's `multipart/mixed;deferSpec=20220824`, GraphiQL's `application/json, multipart/mixed`) gets
  the answers of operations using `@defer`/`@stream` as `multipart/mixed` parts, sent as they are ready
  (`gateway/http/incremental.py`, docs/incremental.md); one allowing only `multipart/mixed` gets every executed
  answer so (one part when nothing is deferred). Other clients get an incremental answer merged, as one JSON.
- **Status codes**: with `application/json` every well-formed request gets 200, GraphQL request errors
  included (parse, validation, variables, operation resolution, query limits, an unknown persisted query);
  with `application/graphql-response+json` a request error gets 400 (404 for an unknown persisted query) and
  its body no `data` entry, while an executed operation gets 200 (field errors included). Malformed requests
  get 400 either way; an unsupported `Content-Type` 415, a body over `MAX_REQUEST_BYTES` 413, a body not
  received within `BODY_TIMEOUT` 408 (and the connection closed), a URL query over
  32 KiB 414, another method than GET and POST 405 (`Allow: GET, POST`), a mutation by GET 405 (`Allow: POST`).
- **Caching by HTTP**: a GET answer that may be reused (the response cache's rule, `reusable_until` in
  `gateway/http/response_cache.py`: built only from cached upstream answers, none of them a failure) carries a strong
  `ETag` over its `data` and `errors` (not `extensions`, which differ between a fresh and a kept answer) and its
  media type, and `Cache-Control: public, max-age=N` (N: until its first upstream answer expires) when every
  caller shares one upstream credential (`AUTH_MODE=token`), else `private, no-cache` with `Vary: Authorization`
  (the caller's own browser keeps it and revalidates it each time). `If-None-Match` naming its ETag is answered
  `304 Not Modified` without a body and with the same `Cache-Control`, `Vary` and `ETag`. Any other GET answer is
  `no-store`. All carry `Vary: Accept`. POST answers carry no caching headers, refusals `no-store`.
- **Persisted documents**: `documentId` (GET parameter or POST member) names a trusted document
  (`gateway/http/trusted_documents.py`), beside APQ's `extensions.persistedQuery`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from gateway.http.apq import PersistedQueryError, requested_hash
from gateway.http.incremental import MULTIPART_MIXED
from gateway.ops.bodies import capped, read_capped
from gateway.ops.errors import error_body
from gateway.planning.documents import Operation

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
SUPPORTED = (GRAPHQL_RESPONSE_JSON, JSON)  # in the server's order of preference
CONTENT_TYPES = {GRAPHQL_RESPONSE_JSON: f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8", JSON: JSON}
METHODS = ("GET", "POST")
# A GET's query string, at most (or MAX_REQUEST_BYTES if lower): uvicorn refuses request lines past about
# 64 KiB itself, with a plain-text 400 the gateway never sees
MAX_URL_QUERY = 32 * 1024
MAX_VARIABLE_DEPTH = 32  # nesting of lists and objects in `variables`; the schema's inputs need 4
PARAMETERS = ("query", "operationName", "variables", "extensions", "documentId")
MAX_DOCUMENT_ID = 256  # characters of a `documentId`


@dataclass
class Refusal(Exception):
    """A request answered without running it: its HTTP status, the error's code and message, headers.

    `well_formed`: a GraphQL request error of a well-formed request, which `application/json` answers with
    200 (the draft's rule for that media type); any other refusal keeps its status under both media types."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    well_formed: bool = False

    def status_for(self, media: str) -> int:
        return 200 if self.well_formed and media == JSON else self.status

    def body(self) -> bytes:
        return error_body(self.message, self.code)


def bad_request(message: str) -> Refusal:
    return Refusal(400, "BAD_REQUEST", message)


def persisted_refusal(error: PersistedQueryError) -> Refusal:
    return Refusal(error.status, error.code, error.message, well_formed=not error.malformed)


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through object.__setattr__
class GraphQLRequest:
    """A request as read from HTTP, every part of the type GraphQL expects."""

    method: str  # GET or POST
    media: str  # the answer's media type
    query: str | None
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None
    persisted_hash: str | None  # extensions.persistedQuery.sha256Hash, checked and lower-cased
    # multipart/mixed: None (not accepted), "incremental" (for incremental answers), "always" (only it accepted)
    multipart: str | None = None
    document_id: str | None = None  # a persisted document's id (`sha256:<hex>`, or an id of a manifest)
    if_none_match: str | None = None  # a GET's `If-None-Match` header


def negotiate(accept: str | None) -> str | None:
    """The response media type for an `Accept` header; None when it allows neither supported type."""
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE_JSON  # the draft's preference since it removed the legacy watershed
    best: tuple[float, int, int] | None = None
    chosen = None
    for preference, media in enumerate(SUPPORTED):
        kind = media.partition("/")[0]
        quality, specificity = 0.0, -1
        for item in accept.split(","):
            parts = [p.strip() for p in item.split(";")]
            range_ = parts[0].lower()
            q = 1.0
            for param in parts[1:]:
                name, _, value = param.partition("=")
                if name.strip().lower() == "q":
                    try:
                        q = float(value)
                    except ValueError:
                        q = 0.0
            if range_ == media:
                rank = 2
            elif range_ == f"{kind}/*":
                rank = 1
            elif range_ == "*/*":
                rank = 0
            else:
                continue
            if rank > specificity:  # the most specific range that matches decides the quality
                quality, specificity = q, rank
        if quality <= 0:
            continue
        key = (quality, specificity, -preference)
        if best is None or key > best:
            best, chosen = key, media
    return chosen


@lru_cache(maxsize=256)  # clients send a few `Accept` values, again and again (each at most a request head)
def accepting(accept: str | None) -> tuple[str | None, bool]:
    """The media type chosen for `Accept` (`negotiate`) and whether it lists `multipart/mixed`."""
    return negotiate(accept), accepts_multipart(accept)


def accepts_multipart(accept: str | None) -> bool:
    """Whether `Accept` lists `multipart/mixed` (whatever its parameters) with a quality above 0."""
    for item in (accept or "").split(","):
        range_, *params = (part.strip() for part in item.split(";"))
        if range_.lower() != MULTIPART_MIXED:
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def multipart_delivery(accept: str | None) -> str | None:
    """How `multipart/mixed` may be used for this `Accept` (see `GraphQLRequest.multipart`)."""
    media, multipart = accepting(accept)
    if not multipart:
        return None
    return "incremental" if media is not None else "always"


class Incoming(Request):
    """Starlette's request with its headers read once into `header` (lower-case name -> the first value, as
    Starlette's `Headers.get` gives it): reading a GraphQL request asks for up to six of them."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        super().__init__(scope, receive)
        self.header = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])
        }


def wants_graphiql(request: Incoming) -> bool:
    """A browser's GET of /graphql without a query (nor a persisted query's `extensions`)."""
    if request.method != "GET":
        return False  # told before the query string is parsed (the request that does nothing pays for it)
    params = request.query_params
    accept = request.header.get("accept", "")
    return (
        not params.get("query")
        and not params.get("extensions")
        and not params.get("documentId")
        and ("text/html" in accept or "*/*" in accept)
    )


def answer_media(request: Incoming) -> str:
    """The media type to answer in; a refusal for another method than GET and POST, or an `Accept` that allows
    neither supported type."""
    if request.method not in METHODS:
        raise Refusal(
            405,
            "METHOD_NOT_ALLOWED",
            f"{request.method[:20]} is not allowed: /graphql answers GET and POST.",
            {"Allow": "GET, POST"},
        )
    media, multipart = accepting(request.header.get("accept"))
    if media is None and multipart:
        return JSON  # the media type of each part (and of a refusal)
    if media is None:
        raise Refusal(
            406, "NOT_ACCEPTABLE", f"Not acceptable: this endpoint answers {' or '.join(SUPPORTED)}."
        )
    return media


async def read_request(request: Incoming, media: str, max_bytes: int) -> GraphQLRequest:
    """The GraphQL request a GET or POST carries; `Refusal` when it carries none the gateway can run."""
    if request.method == "GET":
        params = _url_parameters(request, max_bytes)
        if_none_match = request.header.get("if-none-match")
    else:
        params = await _body_parameters(request, max_bytes)
        if_none_match = None
    multipart = multipart_delivery(request.header.get("accept"))
    return _typed(params, request.method, media, multipart, if_none_match)


def _url_parameters(request: Incoming, max_bytes: int) -> dict[str, Any]:
    """GET: the parameters in the URL, `variables` and `extensions` JSON-decoded; an empty one is absent."""
    limit = min(max_bytes, MAX_URL_QUERY)
    if len(request.scope.get("query_string", b"")) > limit:
        raise Refusal(
            414,
            "URL_TOO_LONG",
            f"The URL's query is longer than the {limit} bytes allowed: send the query by POST.",
        )
    params: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        if name not in PARAMETERS or value == "":
            continue
        if name in params:
            raise bad_request(f"`{name}` is given more than once.")
        params[name] = value
    for name in ("variables", "extensions"):
        if name in params:
            try:
                params[name] = orjson.loads(params[name])
            except orjson.JSONDecodeError:
                raise bad_request(f"`{name}` is not valid JSON.") from None
    return params


async def _body_parameters(request: Incoming, max_bytes: int) -> dict[str, Any]:
    """POST: the JSON object of the body, read to at most `max_bytes`."""
    media, charset = content_type(request.header.get("content-type") or "")
    if not media:
        raise Refusal(415, "UNSUPPORTED_MEDIA_TYPE", "A POST needs Content-Type: application/json.")
    if media != JSON or charset != "utf-8":
        given = media[:60] if charset == "utf-8" else f"{media[:60]}; charset={charset[:20]}"
        raise Refusal(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Unsupported Content-Type {given!r}: send application/json (utf-8).",
        )
    body = await read_body(request, max_bytes)
    if not body.strip():
        raise bad_request("The request body is empty: send a JSON object with a `query`.")
    try:
        params = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request("Unable to parse request body as JSON.") from None
    if isinstance(params, list):
        raise bad_request("Batching is not enabled: send one operation per request.")
    if not isinstance(params, dict):
        raise bad_request("The request body must be a JSON object with a `query`.")
    return params


@lru_cache(maxsize=64)  # clients send a few Content-Type values
def content_type(header: str) -> tuple[str, str]:
    """A Content-Type's media type (lower case) and charset (utf-8 when none is given)."""
    media, *options = header.split(";")
    charset = "utf-8"
    for option in options:
        name, _, value = option.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def too_large(max_bytes: int) -> Refusal:
    return Refusal(
        413,
        "REQUEST_TOO_LARGE",
        f"The request body is larger than the {max_bytes} bytes allowed (MAX_REQUEST_BYTES).",
    )


def body_timeout(seconds: float) -> Refusal:
    """The body did not come within BODY_TIMEOUT: 408, and the connection is closed (what is left of the body
    is never read)."""
    return Refusal(
        408,
        "REQUEST_TIMEOUT",
        f"The request body did not arrive within {seconds:g} s (BODY_TIMEOUT).",
        {"Connection": "close"},
    )


async def read_body(request: Incoming, max_bytes: int) -> bytes:
    """The body, refused (413) past `max_bytes`: at once when Content-Length says so, else while it streams in."""
    declared, refuse = request.header.get("content-length"), lambda size: too_large(max_bytes)
    message = await request.receive()  # nearly always the whole body, in one message
    if message["type"] == "http.request" and not message.get("more_body", False):
        return capped(declared, message.get("body", b""), max_bytes, refuse)
    if message["type"] != "http.request":
        raise ClientDisconnect  # as Starlette's `Request.stream` would
    return await read_capped(declared, _more(request), max_bytes, refuse, first=message.get("body", b""))


async def _more(request: Incoming) -> AsyncIterator[bytes]:
    """The rest of a body that came in several messages."""
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _typed(
    params: dict[str, Any], method: str, media: str, multipart: str | None, if_none_match: str | None = None
) -> GraphQLRequest:
    query = params.get("query")
    if query is not None and not isinstance(query, str):
        raise bad_request("The GraphQL operation's `query` must be a string or null, if provided.")
    operation_name = params.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise bad_request("The GraphQL operation's `operationName` must be a string or null, if provided.")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise bad_request("The GraphQL operation's `variables` must be an object or null, if provided.")
    if variables and deeper_than(variables, MAX_VARIABLE_DEPTH):
        raise bad_request(f"`variables` are nested deeper than the {MAX_VARIABLE_DEPTH} levels allowed.")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise bad_request("The GraphQL operation's `extensions` must be an object or null, if provided.")
    try:
        digest = requested_hash(extensions)
    except PersistedQueryError as exc:
        raise persisted_refusal(exc) from None
    document_id = params.get("documentId")
    if document_id is not None:
        if not isinstance(document_id, str) or not 0 < len(document_id) <= MAX_DOCUMENT_ID:
            raise bad_request(
                f"`documentId` must be a string of 1 to {MAX_DOCUMENT_ID} characters, if provided."
            )
        if query or digest:
            raise bad_request(
                "Send either a `documentId` or a `query` (or a persisted query's hash), not both."
            )
    return GraphQLRequest(
        method,
        media,
        query or None,
        operation_name or None,
        variables,
        extensions,
        digest,
        multipart,
        document_id,
        if_none_match,
    )


def deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest in `value` more than `limit` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


NO_STORE = {"Cache-Control": "no-store", "Vary": "Accept"}


def cache_headers(expires_at: float | None, shared: bool) -> dict[str, str]:
    """A GET answer's caching headers: reusable until `expires_at` (None: not reusable, never stored); by
    every caller (`shared`: `public, max-age=N`), else by the caller's own browser, revalidated each time."""
    if expires_at is None:
        return dict(NO_STORE)
    if shared:
        max_age = int(expires_at - time.time())
        if max_age < 1:
            return dict(NO_STORE)
        return {"Cache-Control": f"public, max-age={max_age}", "Vary": "Accept"}
    return {"Cache-Control": "private, no-cache", "Vary": "Accept, Authorization"}


def entity_tag(answer: bytes, media: str) -> str:
    """A strong ETag of an answer's encoded `data` and `errors` in one media type (RFC 9110 8.8.3)."""
    digest = hashlib.blake2b(answer, digest_size=16)
    digest.update(media.encode())
    return f'"{digest.hexdigest()}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 13.1.2 says for this header)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def check_operation(operation: Operation, request: GraphQLRequest) -> None:
    """Refuse what cannot run: a document naming no single operation to run (the GraphQL spec's GetOperation:
    several and no `operationName`, or a name it does not define), a mutation or subscription by GET."""
    if operation.parsed and operation.kind is None:
        if request.operation_name is None:
            message = "The document must contain one operation, or `operationName` must name the one to run."
        else:
            message = f"Unknown operation named '{request.operation_name[:100]}'."
        raise Refusal(400, "OPERATION_RESOLUTION_FAILURE", message, well_formed=True)
    if request.method == "GET" and operation.kind in ("mutation", "subscription"):
        raise Refusal(
            405,
            "METHOD_NOT_ALLOWED",
            f"{operation.kind.capitalize()}s are not allowed over GET: use POST.",  # type: ignore[union-attr]
            {"Allow": "POST"},
        )
