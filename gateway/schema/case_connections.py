"""The cursor connections of the case lists: for each list, how one upstream page is fetched, what
defines the list (its cursors' fingerprint) and what is already known for free. The windowing itself
is `gateway.schema.connection`.

- v2 cases and v1 cases: the listing with the caller's filter and order, at the page the plan picks.
- A user's or a tag's cases: the first window of every parent asking with the same arguments is served
  by the batched `Loaders.related` listings (asked for one case more, which tells whether more follow);
  a window after or before a cursor is its parent's own listing, narrowed by the all-of filter.
- A case's activities: windows within the embedded first page cost nothing; others use its pages.
- A case's records: pages group their records by record type, which hides the order within a page, so
  this list is read in pages of a fixed size (order: page by page, group by group); the embedded page
  serves when it holds them all.
"""

from __future__ import annotations

from typing import Any

import orjson
import strawberry

from gateway.schema.connection import Item, build, read_slice, resolve_window
from gateway.schema.connection import fingerprint as fingerprint_of
from gateway.schema.context import Context
from gateway.schema.enums import CaseOrder
from gateway.schema.filters import CaseFilter, LegacyCaseFilter, check_filter, to_upstream
from gateway.schema.page import check_id
from gateway.upstream import v1, v2
from gateway.upstream.loaders import RELATED

Info = strawberry.Info[Context]
Window = tuple[int | None, str | None, int | None, str | None]  # first, after, last, before


def meta_count(data: dict[str, Any]) -> int:
    meta = data.get("meta")
    return int((meta if isinstance(meta, dict) else {}).get("count") or 0)


def canonical(filters: dict[str, Any]) -> str:
    return orjson.dumps(filters, option=orjson.OPT_SORT_KEYS).decode()


def v2_filters(filter: CaseFilter | None) -> dict[str, Any]:
    return check_filter(to_upstream(filter)) if filter else {}


async def v2_window(
    info: Info,
    window: Window,
    print_: str,
    filters: dict[str, Any],
    order: CaseOrder | None,
    team_id: int | None = None,
) -> dict[str, Any]:
    """A window of a v2 case listing; the cases it fetches answer later lookups of their ids for free."""
    asked = read_slice(*window, print_=print_, max_size=v2.MAX_PER_PAGE, default=v2.DEFAULT_PER_PAGE)
    ctx = info.context

    async def fetch(page: int, per_page: int) -> tuple[list[Item], int]:
        listing = ctx.services.v2.list_cases(
            ctx.caller,
            filters=filters or None,
            order=order.value if order else None,
            page=page,
            per_page=per_page,
            team_id=team_id,
        )
        data = await ctx.loaders.listing(listing)
        return data["cases"], meta_count(data)

    return await resolve_window(asked, fetch, print_=print_, max_per_page=v2.MAX_PER_PAGE)


async def cases_connection(
    info: Info, filter: CaseFilter | None, order: CaseOrder | None, team_id: int | None, window: Window
) -> dict[str, Any]:
    if team_id is not None:
        check_id(team_id, "teamId")
    filters = v2_filters(filter)
    print_ = fingerprint_of("cases", filters, order.value if order else None, team_id)
    return await v2_window(info, window, print_, filters, order, team_id)


async def legacy_cases_connection(
    info: Info, filter: LegacyCaseFilter | None, window: Window
) -> dict[str, Any]:
    params = check_filter(to_upstream(filter)) if filter else {}
    print_ = fingerprint_of("legacyCases", params)
    asked = read_slice(*window, print_=print_, max_size=v1.MAX_PER_PAGE, default=v1.DEFAULT_PER_PAGE)
    ctx = info.context

    async def fetch(page: int, per_page: int) -> tuple[list[Item], int]:
        data = await ctx.services.v1.list_cases(ctx.caller, params, page=page, per_page=per_page)
        ctx.loaders.prime_legacy_cases(data["cases"])
        return data["cases"], data["count"]

    return await resolve_window(asked, fetch, print_=print_, max_per_page=v1.MAX_PER_PAGE)


async def related_connection(
    info: Info, kind: str, parent: str, filter: CaseFilter | None, order: CaseOrder | None, window: Window
) -> dict[str, Any]:
    """A user's or a tag's cases. The first window (no cursor, `first` below the page limit) goes through
    `Loaders.related` with one case more, batched with every parent asking the same; its count is known
    when the parent has no more cases than that, else `totalCount` asks `Loaders.counts` for it."""
    filters = v2_filters(filter)
    _, all_key, _ = RELATED[kind]
    narrowed = {**filters, all_key: [*filters.get(all_key, []), parent]}
    order_value = order.value if order else None
    print_ = fingerprint_of(kind, parent, filters, order_value)
    first, after, last, before = window
    if after is None and before is None and last is None and (first or v2.DEFAULT_PER_PAGE) < v2.MAX_PER_PAGE:
        asked = read_slice(*window, print_=print_, max_size=v2.MAX_PER_PAGE, default=v2.DEFAULT_PER_PAGE)
        assert asked.first is not None
        key = (kind, parent, canonical(filters), order_value, asked.first + 1)
        found: list[Item] = await info.context.loaders.related.load(key)
        more = len(found) > asked.first
        count = None if more else len(found)
        return build(found[: asked.first], 0, print_, count, has_next=more, count_of=canonical(narrowed))
    return await v2_window(info, window, print_, narrowed, order)


async def embedded_window(
    info: Info, case: dict[str, Any], key: str, window: Window, fixed: int | None = None
) -> dict[str, Any]:
    """A window of a case's `activities` or `records` (`key`): the embedded first page and its meta's count
    for free, the case's pages through the per-request loader for the rest."""
    print_ = fingerprint_of(key, case["case_id"])
    asked = read_slice(*window, print_=print_, max_size=v2.MAX_PER_PAGE, default=v2.DEFAULT_PER_PAGE)
    loader = getattr(info.context.loaders, key)
    flatten = flat_records if key == "records" else list

    async def fetch(page: int, per_page: int) -> tuple[list[Item], int]:
        data = await loader.load((case["case_id"], page, per_page))
        return flatten(data[key]), meta_count(data)

    embedded, meta = case.get(key), case.get(f"{key}_meta")
    known: dict[str, Any] = {}
    if isinstance(meta, dict) and isinstance(meta.get("count"), int):
        known["count"] = meta["count"]
        head = flatten(embedded) if isinstance(embedded, list) else None
        # a page of records shows them grouped: its order is the fixed pages' only when it is the whole list
        if head is not None and (fixed is None or len(head) >= meta["count"]):
            known["head"] = head
    return await resolve_window(
        asked, fetch, print_=print_, max_per_page=v2.MAX_PER_PAGE, fixed=fixed, **known
    )


def flat_records(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A page's records, group by group, each with its record type."""
    return [
        {**record, "record_type_id": group["record_type_id"], "record_type_name": group["record_type_name"]}
        for group in groups
        for record in group["record_type_record_results"]
    ]
