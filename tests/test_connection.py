"""The cursor connection machinery on its own (gateway/schema/connection.py): cursors, the arguments'
window, the window's upstream pages, and windows served from an in-memory list paged like an upstream."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ops.errors import BadUserInput
from gateway.schema.connection import (
    Cursor,
    Plan,
    Slice,
    bounds,
    decode_cursor,
    encode_cursor,
    fingerprint,
    plan_pages,
    read_slice,
    resolve_window,
)

PRINT = fingerprint("cases", {"status": "OPEN"}, "CREATED_ASC", None)
positions = st.integers(min_value=0, max_value=10**6)
counts = st.none() | st.integers(min_value=0, max_value=10**6)


# --- cursors ---------------------------------------------------------------------------------------------


@given(positions, counts)
def test_a_cursor_gives_back_its_position_and_count(position, count):
    cursor = encode_cursor(PRINT, position, count)
    assert decode_cursor(cursor, PRINT, "after") == Cursor(position, count)
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor


def test_the_fingerprint_covers_every_part_and_ignores_key_order():
    assert fingerprint("cases", {"a": 1, "b": 2}, None) == fingerprint("cases", {"b": 2, "a": 1}, None)
    different = {
        fingerprint("cases", {"a": 1}, None, None),
        fingerprint("cases", {"a": 2}, None, None),
        fingerprint("cases", {"a": 1}, "CREATED_ASC", None),
        fingerprint("cases", {"a": 1}, None, 276),
        fingerprint("legacyCases", {"a": 1}, None, None),
    }
    assert len(different) == 5


@given(st.text(max_size=80))
def test_anything_else_is_refused_as_bad_user_input(text):
    with pytest.raises(BadUserInput) as refused:
        decode_cursor(text, PRINT, "before")
    assert refused.value.extensions == {"code": "BAD_USER_INPUT", "argument": "before"}


@pytest.mark.parametrize(
    "payload",
    [
        f"c1:{PRINT}:-1:10",  # negative position
        f"c1:{PRINT}:1:x",  # count not a number
        f"c2:{PRINT}:1:10",  # another version
        f"c1:{PRINT}:1",  # a part missing
        f"c1:{PRINT}:1:10:0",  # a part more
        f"c1:{PRINT}:01:10",  # another spelling of a valid cursor
    ],
)
def test_cursors_not_made_here_are_refused(payload):
    text = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    with pytest.raises(BadUserInput, match="is not a cursor of this API"):
        decode_cursor(text, PRINT, "after")


def test_a_cursor_of_other_arguments_is_refused():
    cursor = encode_cursor(fingerprint("cases", {}, None, None), 3, 300)
    with pytest.raises(BadUserInput, match="cursor of another list"):
        decode_cursor(cursor, PRINT, "after")


# --- arguments -> window ---------------------------------------------------------------------------------


def slice_of(first=None, after=None, last=None, before=None, max_size=50, default=20) -> Slice:
    cursor = {
        k: None if v is None else encode_cursor(PRINT, *v) for k, v in (("after", after), ("before", before))
    }
    return read_slice(
        first, cursor["after"], last, cursor["before"], print_=PRINT, max_size=max_size, default=default
    )


@pytest.mark.parametrize(
    ("arguments", "message", "argument"),
    [
        ({"first": 2, "last": 2}, "Give first or last, not both.", "first"),
        ({"first": 0}, "first must be between 1 and 50, got 0.", "first"),
        ({"first": 51}, "first must be between 1 and 50, got 51.", "first"),
        ({"last": -1}, "last must be between 1 and 50, got -1.", "last"),
        ({"after": (5, 9), "before": (6, 9)}, "No item lies between after and before.", "before"),
        ({"after": (5, 9), "before": (2, 9)}, "No item lies between after and before.", "before"),
    ],
)
def test_bad_arguments_are_refused(arguments, message, argument):
    with pytest.raises(BadUserInput) as refused:
        slice_of(**arguments)
    assert refused.value.message == message
    assert refused.value.extensions["argument"] == argument


def test_the_window_of_each_kind_of_arguments():
    assert bounds(slice_of(), None) == (0, 20)  # neither first nor last: the default page size
    assert bounds(slice_of(first=7), None) == (0, 7)
    assert bounds(slice_of(first=7, after=(6, 300)), None) == (7, 14)
    assert bounds(slice_of(first=7, after=(6, 300), before=(10, 300)), None) == (7, 10)
    assert bounds(slice_of(last=7, before=(10, 300)), None) == (3, 10)
    assert bounds(slice_of(last=7, before=(3, 300)), None) == (0, 3)
    assert bounds(slice_of(last=7), None) is None  # needs the count
    assert bounds(slice_of(last=7), 300) == (293, 300)
    assert slice_of(last=7, after=(290, 300)).count == 300  # the cursor knows it
    assert bounds(slice_of(last=7, after=(290, 300)), 300) == (293, 300)
    assert bounds(slice_of(last=7, after=(296, 300)), 300) == (297, 300)
    assert bounds(slice_of(last=7, after=(310, 300)), 300) == (311, 311)  # past the end: empty


# --- window -> upstream pages ----------------------------------------------------------------------------


def covers(plan: Plan, start: int, end: int) -> bool:
    return plan.offset <= start and plan.offset + plan.fetched() >= end


def single_page_sizes(start: int, end: int, max_per_page: int) -> list[int]:
    return [p for p in range(1, max_per_page + 1) if start // p == (end - 1) // p]


@settings(max_examples=500)
@given(st.sampled_from([50, 100]), st.integers(0, 5000), st.data())
def test_a_window_costs_one_call_when_a_page_size_fits_it_else_two(max_per_page, start, data):
    size = data.draw(st.integers(1, max_per_page))
    end = start + size
    plan = plan_pages(start, end, max_per_page)
    assert covers(plan, start, end)
    assert 1 <= plan.per_page <= max_per_page
    fits = single_page_sizes(start, end, max_per_page)
    assert plan.pages == (1 if fits else 2)
    # and no plan with as few pages fetches less
    best = min(
        p * plan.pages
        for p in range(1, max_per_page + 1)
        if covers(Plan(p, start // p + 1, plan.pages), start, end)
    )
    assert plan.fetched() == best


def test_the_plans_of_paging_seven_at_a_time():
    assert plan_pages(0, 7, 50) == Plan(7, 1, 1)
    assert plan_pages(7, 14, 50) == Plan(7, 2, 1)
    assert plan_pages(294, 301, 50, count=300) == Plan(6, 50, 1)  # cut at the known end
    assert plan_pages(293, 300, 50) == Plan(10, 30, 1)
    assert plan_pages(300, 307, 50, count=300) == Plan(10, 31, 1)  # at the end: looks for new items
    # 49..98 (50 items): no page of up to 50 holds it; two of 33 (33..98) fetch least
    assert plan_pages(49, 99, 50) == Plan(33, 2, 2)


@given(st.integers(0, 5000), st.integers(1, 50))
def test_fixed_pages_cover_a_window_in_at_most_two(start, size):
    plan = plan_pages(start, start + size, 50, fixed=50)
    assert plan.per_page == 50 and covers(plan, start, start + size)
    assert plan.pages == (1 if start // 50 == (start + size - 1) // 50 else 2)


# --- windows over a list paged like an upstream ----------------------------------------------------------


class Upstream:
    """A list served in pages, counting the calls."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.calls: list[tuple[int, int]] = []

    async def fetch(self, page: int, per_page: int) -> tuple[list[Any], int]:
        self.calls.append((page, per_page))
        return self.items[(page - 1) * per_page : page * per_page], len(self.items)


def run(upstream: Upstream, asked: Slice, max_per_page: int = 50, **known: Any) -> dict[str, Any]:
    return asyncio.run(
        resolve_window(asked, upstream.fetch, print_=PRINT, max_per_page=max_per_page, **known)
    )


def nodes(connection: dict[str, Any]) -> list[Any]:
    return [edge["node"] for edge in connection["edges"]]


def arguments(first=None, after=None, last=None, before=None, max_size=50) -> Slice:
    return read_slice(first, after, last, before, print_=PRINT, max_size=max_size, default=20)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 320), st.integers(1, 50), st.sampled_from([50, 100]))
def test_paging_forward_then_backward_gives_every_item_once_in_order(length, size, max_per_page):
    items = list(range(1000, 1000 + length))
    upstream = Upstream(items)
    seen, after = [], None
    while True:
        before_calls = len(upstream.calls)
        connection = run(upstream, arguments(first=size, after=after, max_size=max_per_page), max_per_page)
        assert len(upstream.calls) - before_calls <= 2
        assert connection["total_count"] == length
        info = connection["page_info"]
        assert info["has_previous_page"] is (len(seen) > 0)
        seen += nodes(connection)
        if not info["has_next_page"]:
            break
        after = info["end_cursor"]
    assert seen == items

    seen, before = [], None
    while True:
        before_calls = len(upstream.calls)
        connection = run(upstream, arguments(last=size, before=before, max_size=max_per_page), max_per_page)
        # without a cursor, `last` reads a first page for the count
        assert len(upstream.calls) - before_calls <= (2 if before else 3)
        seen = nodes(connection) + seen
        if not connection["page_info"]["has_previous_page"]:
            break
        before = connection["page_info"]["start_cursor"]
    assert seen == items


def spec_window(items: list[Any], first, after, last, before) -> list[Any]:
    """The spec's algorithm: cut at the cursors, then keep the first `first` or the last `last`."""
    edges = list(range(len(items)))
    if after is not None:
        edges = [e for e in edges if e > after]
    if before is not None:
        edges = [e for e in edges if e < before]
    if first is not None:
        edges = edges[:first]
    if last is not None:
        edges = edges[-last:] if last else []
    return [items[e] for e in edges]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 250), st.data())
def test_every_window_is_what_the_spec_says(length, data):
    items = [f"item{n}" for n in range(length)]
    size = data.draw(st.integers(1, 50))
    forward = data.draw(st.booleans())
    after = data.draw(st.none() | st.integers(0, length + 5))
    before = data.draw(st.none() | st.integers(0, length + 5))
    if after is not None and before is not None and before <= after + 1:
        before = None
    cursor = {
        k: None if v is None else encode_cursor(PRINT, v, length) for k, v in (("a", after), ("b", before))
    }
    first, last = (size, None) if forward else (None, size)
    upstream = Upstream(items)
    connection = run(upstream, arguments(first, cursor["a"], last, cursor["b"]))
    expected = spec_window(items, first, after, last, before)
    assert nodes(connection) == expected
    # at most two pages, and one for the count only when no cursor brought it
    assert len(upstream.calls) <= (3 if last and after is None and before is None else 2)
    info = connection["page_info"]
    if expected:
        start = items.index(expected[0])
        assert [decode_cursor(e["cursor"], PRINT, "after").position for e in connection["edges"]] == list(
            range(start, start + len(expected))
        )
        assert info["has_previous_page"] is (start > 0)
        assert info["has_next_page"] is (start + len(expected) < length)
        assert info["start_cursor"] == connection["edges"][0]["cursor"]
        assert info["end_cursor"] == connection["edges"][-1]["cursor"]
    else:
        assert info["start_cursor"] is None and info["end_cursor"] is None


def test_the_known_first_items_serve_windows_within_them_for_free():
    items = list(range(45))
    upstream = Upstream(items)
    head = items[:20]
    assert nodes(run(upstream, arguments(first=20), count=45, head=head)) == items[:20]
    assert (
        nodes(run(upstream, arguments(first=5, after=encode_cursor(PRINT, 9, 45)), count=45, head=head))
        == items[10:15]
    )
    assert upstream.calls == []
    assert (
        nodes(run(upstream, arguments(first=5, after=encode_cursor(PRINT, 17, 45)), count=45, head=head))
        == items[18:23]
    )
    assert upstream.calls == [(6, 4)]  # 18 and 19 from the head, one page for 20..22
    upstream.calls.clear()
    assert nodes(run(upstream, arguments(last=3), count=45, head=head)) == items[42:]  # count known: no probe
    assert upstream.calls == [(15, 3)]
    small = Upstream(list(range(12)))
    assert (
        nodes(run(small, arguments(last=5), count=12, head=small.items)) == small.items[7:]
    )  # the whole list
    assert small.calls == []


def test_last_without_a_count_reads_the_first_page_which_may_hold_the_window():
    upstream = Upstream(list(range(30)))
    assert nodes(run(upstream, arguments(last=4))) == [26, 27, 28, 29]
    assert upstream.calls == [(1, 50)]
    upstream = Upstream(list(range(300)))
    assert nodes(run(upstream, arguments(last=7))) == list(range(293, 300))
    assert upstream.calls == [(1, 50), (30, 10)]
    upstream = Upstream(list(range(51)))
    assert nodes(run(upstream, arguments(last=26))) == list(range(25, 51))
    assert upstream.calls == [(1, 50), (51, 1)]  # 25..49 from the count's page, then the one case left


def test_a_failed_page_fails_the_window():
    class Failing(Upstream):
        async def fetch(self, page: int, per_page: int) -> tuple[list[Any], int]:
            await super().fetch(page, per_page)
            if page == 3:
                raise BadUserInput("page three failed")
            return [], 0

    upstream = Failing(list(range(100)))
    with pytest.raises(BadUserInput, match="page three failed"):
        run(upstream, arguments(first=50, after=encode_cursor(PRINT, 48, 100)))
    assert sorted(upstream.calls) == [(2, 33), (3, 33)]
