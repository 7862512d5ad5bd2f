"""Relay cursor connections over page-numbered upstream lists.

The GraphQL Cursor Connections Specification (`first/after/last/before`, `edges { cursor node }`,
`pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`) over upstreams that only know `page`
and `per_page`. Three pure parts, and one function running them:

- **Cursors** are opaque strings carrying an item's position in its list, the list's total count as
  last seen, and a fingerprint of what defines the list (which list, filter, order, team, parent). A
  cursor given with other arguments than those it came from is refused, as is anything not made here.
- **Windows**: the arguments resolve to the positions `[start, end)` they ask for (`last` without
  `before` needs the count: from the cursor when it has it, else from a first page).
- **Plans**: a window maps to the fewest upstream pages: one page size and one or two consecutive pages.
  Any window of n <= max_per_page items fits two pages of size n; it costs one call when some page size
  up to the upstream's maximum puts it in a single page, and the plan picks the one fetching least.

strawberry's own `relay` module slices an iterable it has in full; here the window decides what is
fetched, so the types are the spec's shape with resolvers of our own. The connection, its edges and
page info are plain dicts (the fast execution path completes them like upstream JSON). The page info is the
spec's `PageInfo`, with exactly its four fields (the page-number lists' own is `PageNumberInfo`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import orjson
import strawberry

from gateway.ops.errors import BadUserInput
from gateway.schema.context import Context
from gateway.schema.declarations import derived

T = TypeVar("T")
Item = Any
# Fetches page `page` (from 1) of `per_page` items: the items and the list's total count.
FetchPage = Callable[[int, int], Awaitable[tuple[list[Item], int]]]

CURSOR_VERSION = "c1"
FINGERPRINT_BYTES = 6

First = Annotated[
    int | None,
    strawberry.argument(
        description="The first n items after `after` (or from the start). At most the list's upstream page "
        "limit (50 for v2 lists, 100 for v1). Default: the upstream's default page size when neither `first` "
        "nor `last` is given."
    ),
]
After = Annotated[
    str | None, strawberry.argument(description="A cursor from this list: the window starts after it.")
]
Last = Annotated[
    int | None,
    strawberry.argument(
        description="The last n items before `before` (or up to the end). Not with `first`; limits as `first`."
    ),
]
Before = Annotated[
    str | None, strawberry.argument(description="A cursor from this list: the window ends before it.")
]


@strawberry.type(
    description="Where a window of a cursor connection stands: the Relay cursor connections specification's "
    "`PageInfo`, with exactly its fields (page-number lists have `PageNumberInfo`)."
)
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether items follow this window.")
    has_previous_page: bool = strawberry.field(description="Whether items precede this window.")
    start_cursor: str | None = strawberry.field(
        description="The cursor of the window's first item (null when the window is empty)."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the window's last item (null when the window is empty)."
    )


@strawberry.type(description="An item of a cursor connection, with the cursor that points at it.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(
        description="An opaque cursor: give it as `after` or `before` with the same other arguments."
    )
    node: T = strawberry.field(description="The item.")


@strawberry.type(
    description="A window of a list, as a Relay cursor connection: page with `first`/`after` forward or "
    "`last`/`before` backward."
)
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of the window, in list order.")
    page_info: PageInfo = strawberry.field(description="Where the window stands.")

    @derived(
        "How many items the whole list has: the upstream's own count. Free on top-level connections; a user's "
        "or tag's cases may need one more call for it (see that field, whose cost counts it).",
        reads=(),  # the window's own count, which the gateway built: no upstream key
    )
    def total_count(
        self, parent: strawberry.Parent[dict[str, Any]], info: strawberry.Info[Context]
    ) -> int | None:
        count = parent["total_count"]
        if count is None:  # not in the answer that served the window: the listing's count, asked once
            return info.context.loaders.counts.load(parent["count_of"])  # type: ignore[no-any-return]
        return count  # type: ignore[no-any-return]


# --- cursors ---------------------------------------------------------------------------------------------


def fingerprint(*parts: Any) -> str:
    """A short hash of what defines a list (its name, filter, order, team, parent), as canonical JSON."""
    digest = hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS), digest_size=FINGERPRINT_BYTES)
    return digest.hexdigest()


def encode_cursor(print_: str, position: int, count: int | None) -> str:
    text = f"{CURSOR_VERSION}:{print_}:{position}:{'' if count is None else count}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Cursor:
    position: int
    count: int | None


def decode_cursor(value: str, print_: str, argument: str) -> Cursor:
    """The position (and count) a cursor carries; BAD_USER_INPUT for a cursor not made by `encode_cursor`,
    or made for another list or other arguments."""
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
        version, got, position, count = text.split(":")
        if version != CURSOR_VERSION or not position.isdigit() or (count and not count.isdigit()):
            raise ValueError
        cursor = Cursor(int(position), int(count) if count else None)
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput(
            f"{argument}: {value[:60]!r} is not a cursor of this API.", argument=argument
        ) from None
    if encode_cursor(got, cursor.position, cursor.count) != value:  # one spelling per cursor
        raise BadUserInput(f"{argument}: {value[:60]!r} is not a cursor of this API.", argument=argument)
    if got != print_:
        raise BadUserInput(
            f"{argument} is a cursor of another list, or of this list with other arguments (filter, order, "
            "team): give it with the arguments it came with.",
            argument=argument,
        )
    return cursor


# --- windows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slice:
    """What the arguments ask for, cursors decoded: `first` or `last` items between the positions of
    `after` and `before`; `count` is the list's total as the cursors last saw it."""

    first: int | None
    last: int | None
    after: int | None
    before: int | None
    count: int | None


def read_slice(
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    *,
    print_: str,
    max_size: int,
    default: int,
) -> Slice:
    """Validate the connection arguments (before any upstream call): BAD_USER_INPUT for `first` with
    `last`, a size out of 1..max_size, a cursor not of this list and arguments, or an empty range."""
    if first is not None and last is not None:
        raise BadUserInput("Give first or last, not both.", argument="first")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 1 <= size <= max_size:
            raise BadUserInput(f"{name} must be between 1 and {max_size}, got {size}.", argument=name)
    if first is None and last is None:
        first = default
    start = decode_cursor(after, print_, "after") if after is not None else None
    end = decode_cursor(before, print_, "before") if before is not None else None
    if start is not None and end is not None and end.position <= start.position + 1:
        raise BadUserInput("No item lies between after and before.", argument="before")
    counts = [c.count for c in (end, start) if c is not None and c.count is not None]
    return Slice(
        first,
        last,
        start.position if start else None,
        end.position if end else None,
        counts[0] if counts else None,
    )


def bounds(asked: Slice, count: int | None) -> tuple[int, int] | None:
    """The positions `[start, end)` asked for; None when only the list's count can tell (`last` without
    `before`) and `count` is None."""
    low = asked.after + 1 if asked.after is not None else 0
    high = asked.before
    if asked.last is not None:
        if high is None:
            if count is None:
                return None
            high = count
        elif count is not None:  # a `before` past the end (the list has shrunk): the end
            high = min(high, count)
        high = max(high, low)
        return max(low, high - asked.last), high
    assert asked.first is not None
    end = low + asked.first
    return low, end if high is None else min(end, high)


# --- plans -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Upstream pages `page .. page + pages - 1`, of `per_page` items each."""

    per_page: int
    page: int
    pages: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def fetched(self) -> int:
        return self.per_page * self.pages


def plan_pages(
    start: int, end: int, max_per_page: int, count: int | None = None, fixed: int | None = None
) -> Plan:
    """The fewest consecutive upstream pages of one size covering `[start, end)` (1 <= end - start <=
    max_per_page), then the fewest items fetched, then the smallest page size. The window is first cut
    at `count` when it would run past a known end (not when it starts there: then it looks for new items).
    `fixed`: the page size is fixed (lists whose order within a page depends on the page size)."""
    if count is not None and start < count < end:
        end = count
    size = end - start
    assert 1 <= size <= max_per_page, (start, end, max_per_page)
    if fixed is not None:
        return Plan(fixed, start // fixed + 1, (end - 1) // fixed - start // fixed + 1)
    for calls in (1, 2):
        best: Plan | None = None
        for per_page in range(-(-size // calls), max_per_page + 1):
            page = start // per_page
            if (page + calls) * per_page >= end and (best is None or calls * per_page < best.fetched()):
                best = Plan(per_page, page + 1, calls)
        if best is not None:
            return best
    raise AssertionError("a window of n items always fits two pages of n")  # pragma: no cover


# --- running a window ------------------------------------------------------------------------------------


def build(
    items: Sequence[Item],
    start: int,
    print_: str,
    count: int | None,
    has_next: bool | None = None,
    count_of: Any = None,
) -> dict[str, Any]:
    """The connection for `items` at positions from `start`. `count` None: the window's source did not
    say (then `has_next` does, and `count_of` is the key of `Loaders.counts` that will)."""
    edges = [
        {"cursor": encode_cursor(print_, start + n, count), "node": item} for n, item in enumerate(items)
    ]
    if has_next is None:
        has_next = count is not None and start + len(items) < count
    return {
        "edges": edges,
        "page_info": {
            "has_next_page": has_next,
            "has_previous_page": start > 0,
            "start_cursor": edges[0]["cursor"] if edges else None,
            "end_cursor": edges[-1]["cursor"] if edges else None,
        },
        "total_count": count,
        "count_of": count_of,
    }


async def fetch_plan(plan: Plan, fetch: FetchPage) -> tuple[list[tuple[int, Item]], int]:
    """The plan's pages, fetched at once: the items with their positions, and the list's count (from the
    last page). A failed page fails the window, once every page has settled."""
    answers = await asyncio.gather(
        *(fetch(plan.page + n, plan.per_page) for n in range(plan.pages)), return_exceptions=True
    )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    found: list[tuple[int, Item]] = []
    for n, (items, _) in enumerate(answers):  # type: ignore[misc]
        base = plan.offset + n * plan.per_page
        found.extend((base + i, item) for i, item in enumerate(items))
    return found, answers[-1][1]  # type: ignore[index]


async def resolve_window(
    asked: Slice,
    fetch: FetchPage,
    *,
    print_: str,
    max_per_page: int,
    count: int | None = None,
    head: Sequence[Item] | None = None,
    fixed: int | None = None,
) -> dict[str, Any]:
    """The connection for `asked`, fetching the fewest pages: `head` (the list's first items, known for
    free, with `count`) serves what of the window it holds; one or two planned pages fetch the rest, after
    one page for the count (serving as `head`) when `last` comes without `before` and no count is known."""
    if count is None:
        count = asked.count
    span = bounds(asked, count)
    if span is None:
        head, count = await fetch(1, fixed or max_per_page)
        span = bounds(asked, count)
        assert span is not None
    start, end = span
    known = list(head[start:end]) if head is not None else []
    rest = start + len(known)  # the first position still to fetch
    if count is not None and (rest >= end or (head is not None and len(head) >= count)):
        return build(known, start, print_, count)
    found, count = await fetch_plan(plan_pages(rest, end, max_per_page, count, fixed), fetch)
    return build(known + [item for position, item in found if rest <= position < end], start, print_, count)
