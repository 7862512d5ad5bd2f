"""Page info shared by every page-number list (v2 cases, v1 cases, activities, records)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from gateway.ops.errors import BadUserInput, UpstreamBadResponse

PageArg = Annotated[int, strawberry.argument(description="The page, from 1.")]


@strawberry.type(
    description="Where a page stands in a page-number list (`page`/`perPage`). The cursor connections' page "
    "info is `PageInfo`, as the Relay specification names it.",
)
class PageNumberInfo:
    page: int = strawberry.field(description="This page's number, from 1.")
    per_page: int = strawberry.field(description="Items per page.")
    pages: int = strawberry.field(description="Number of pages.")
    count: int = strawberry.field(description="Total number of items across all pages.")
    has_next_page: bool = strawberry.field(description="Whether a page follows this one.")
    has_previous_page: bool = strawberry.field(description="Whether a page precedes this one.")


def page_info(page: int, per_page: int, pages: int, count: int) -> dict[str, Any]:
    return {
        "page": page,
        "per_page": per_page,
        "pages": pages,
        "count": count,
        "has_next_page": page < pages,
        "has_previous_page": page > 1,
    }


def page_info_from_meta(page: int, per_page: int, meta: Any) -> dict[str, Any]:
    """Page info from a v2 `meta` object (`pages`, `count`); absent numbers fall back to this page."""
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict):
        raise UpstreamBadResponse("The upstream sent a page meta that is not an object.")
    return page_info(
        page, meta_int(meta, "per_page", per_page), meta_int(meta, "pages", 0), meta_int(meta, "count", 0)
    )


def meta_int(meta: dict[str, Any], key: str, default: int) -> int:
    """A number of the upstream's page `meta` (`default` when absent); one that is no whole number is the
    upstream's error."""
    value = meta.get(key)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise UpstreamBadResponse(f"The upstream sent a page {key} that is not a whole number.")


def check_page(page: int, per_page: int, max_per_page: int) -> None:
    """Reject page arguments the upstream would refuse, before any upstream call."""
    if page < 1:
        raise BadUserInput(f"page must be 1 or more, got {page}.", argument="page")
    if not 1 <= per_page <= max_per_page:
        raise BadUserInput(
            f"perPage must be between 1 and {max_per_page}, got {per_page}.", argument="perPage"
        )


def check_id(value: int, argument: str) -> None:
    if value < 1:
        raise BadUserInput(f"{argument} must be a positive id, got {value}.", argument=argument)
