"""Reading a body with a cap: the one reader of the GraphQL requests' bodies (`gateway/http/graphql_http.py`)
and of the upstream answers (`gateway/upstream/http.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable


def capped(declared: str | None, body: bytes, limit: int, too_large: Callable[[int], BaseException]) -> bytes:
    """A body received whole, refused past `limit` bytes as `read_capped` refuses one (no coroutine: a
    GraphQL request's body nearly always comes in one message)."""
    _refuse_declared(declared, limit, too_large)
    if len(body) > limit:
        raise too_large(len(body))
    return body


def _refuse_declared(declared: str | None, limit: int, too_large: Callable[[int], BaseException]) -> None:
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared))


async def read_capped(
    declared: str | None,
    chunks: AsyncIterable[bytes] | None,
    limit: int,
    too_large: Callable[[int], BaseException],
    truncate: bool = False,
    first: bytes = b"",
) -> bytes:
    """The body, read as it streams in, at most `limit` bytes. Past them `too_large(size)` is raised: at once
    when the Content-Length (`declared`) says so, else as soon as the bytes read exceed it. With `truncate`,
    the first `limit` bytes are the body instead (and reading stops). `first`: the body's first bytes, already
    received (`chunks` then brings the rest; None: there is no more)."""
    if not truncate:
        _refuse_declared(declared, limit, too_large)
    read: list[bytes] = []
    size = 0
    if first:
        if len(first) > limit:
            if truncate:
                return first[:limit]
            raise too_large(len(first))
        read, size = [first], len(first)
    if chunks is None:
        return first  # the whole body came at once (a GraphQL request, nearly always)
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            if truncate:
                read.append(chunk[: limit - size + len(chunk)])
                break
            raise too_large(size)
        read.append(chunk)
    return b"".join(read)
