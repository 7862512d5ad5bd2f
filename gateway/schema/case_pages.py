"""The pages of a case's activities and records: the first page as embedded in the case, the others
fetched through the per-request loaders, and the upstream's pagination metadata (page numbers, never URLs)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.dataloader import DataLoader

from gateway.schema.case_parts import Activity, Record
from gateway.schema.context import Context
from gateway.schema.declarations import (
    OfKey,
    derived,
)
from gateway.schema.page import PageNumberInfo, check_page, page_info_from_meta
from gateway.upstream.loaders import PageKey
from gateway.upstream.v2 import MAX_PER_PAGE

if TYPE_CHECKING:
    pass

Parent = strawberry.Parent[dict[str, Any]]
Info = strawberry.Info[Context]


def page_of(key: str) -> OfKey:
    """A `PageMeta` page field: the page number in the upstream's page URL under `key` (never the URL)."""
    return OfKey(key, page_number)


def page_number(url: Any) -> int | None:
    """The page an upstream page URL names (its `page` parameter), or None: the URL itself, with the upstream's
    host, never reaches an answer."""
    match = _PAGE.search(url) if isinstance(url, str) else None
    return int(match[1]) if match else None


_PAGE = re.compile(r"[?&]page=([0-9]{1,9})(?:&|#|$)")


@strawberry.type(
    description="Upstream pagination metadata for a list embedded in a case (activities, records): page numbers "
    "and counts. Pass a page number as `page` to `Case.activityPage` / `Case.recordPage` to fetch that page."
)
class PageMeta:
    @derived("This page's number.", reads=("current_page",), compute=page_of("current_page"))
    def current_page(self, parent: Parent, info: Info) -> int | None:
        return page_of("current_page")(parent, info.context.settings)  # type: ignore[no-any-return]

    @derived(
        "The previous page's number, if any.", reads=("previous_page",), compute=page_of("previous_page")
    )
    def previous_page(self, parent: Parent, info: Info) -> int | None:
        return page_of("previous_page")(parent, info.context.settings)  # type: ignore[no-any-return]

    @derived("The next page's number, if any.", reads=("next_page",), compute=page_of("next_page"))
    def next_page(self, parent: Parent, info: Info) -> int | None:
        return page_of("next_page")(parent, info.context.settings)  # type: ignore[no-any-return]

    next_page_number: int | None = strawberry.field(description="Number of the next page, if any.")
    per_page: int | None = strawberry.field(description="Items per page.")
    pages: int | None = strawberry.field(description="Number of pages.")
    count: int | None = strawberry.field(description="Total number of items.")


@strawberry.type(description="A page of a case's activities.")
class ActivityPage:
    items: list[Activity] = strawberry.field(description="The activities on this page.")
    page_info: PageNumberInfo = strawberry.field(description="Where this page stands.")


@strawberry.type(description="A page of a case's records, grouped by record type.")
class RecordPage:
    items: list[Record] = strawberry.field(description="The records on this page, grouped by record type.")
    page_info: PageNumberInfo = strawberry.field(description="Where this page stands; counts are of records.")


async def embedded_or_fetched_page(
    case: dict[str, Any], key: str, loader: DataLoader[PageKey, dict[str, Any]], page: int, per_page: int
) -> Any:
    """Page `page` of a case's `activities` or `records`: the embedded first page when it is the page asked
    for (no upstream call), else one fetch through the per-request loader."""
    check_page(page, per_page, MAX_PER_PAGE)
    embedded, meta = case.get(key), case.get(f"{key}_meta")
    if page == 1 and embedded is not None and isinstance(meta, dict) and meta.get("per_page") == per_page:
        data = {key: embedded, "meta": meta}
    else:
        data = await loader.load((case["case_id"], page, per_page))
    return {"items": data[key], "page_info": page_info_from_meta(page, per_page, data.get("meta"))}
