"""The root `Query`: where each top-level field is resolved."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from gateway.ops.errors import UpstreamBadResponse
from gateway.schema.case import Case, CasePage
from gateway.schema.case_connections import cases_connection, legacy_cases_connection
from gateway.schema.connection import After, Before, Connection, First, Last
from gateway.schema.context import Context
from gateway.schema.declarations import (
    CASE_BY_ID,
    CASES_WINDOW,
    LEGACY_CASE_BY_ID,
    LEGACY_CASES_WINDOW,
    NODE,
    ROOT_V1,
    ROOT_V2,
    fetching,
)
from gateway.schema.filters import (
    CaseFilterArg,
    CaseOrderArg,
    LegacyCaseFilterArg,
    check_filter,
    to_upstream,
)
from gateway.schema.legacy import LegacyCase, LegacyCasePage
from gateway.schema.node import Node, parse_global_id
from gateway.schema.page import PageArg, check_id, check_page, page_info, page_info_from_meta
from gateway.upstream import v1, v2
from gateway.upstream.links import v2_id_of

Info = strawberry.Info[Context]


def arg(description: str) -> Any:
    return strawberry.argument(description=description)


def linked_v2_id(case: Any, label: str) -> int | None:
    """The v2 id a listed v1 case points at; None for a case too malformed to tell (its `case` field then
    reports the defect itself)."""
    try:
        return v2_id_of(case, label)
    except (AttributeError, TypeError, UpstreamBadResponse):
        return None


@strawberry.type(description="Cases from the v2 cases API and the v1 investigations API, in one schema.")
class Query:
    @fetching(
        ROOT_V2, "A page of v2 cases the credential has access to, filtered and ordered.", returns="v2.list"
    )
    async def cases(
        self,
        info: Info,
        filter: CaseFilterArg = None,
        order: CaseOrderArg = None,
        page: PageArg = 1,
        per_page: Annotated[int, arg(f"Cases per page, 1 to {v2.MAX_PER_PAGE}.")] = v2.DEFAULT_PER_PAGE,
        team_id: Annotated[int | None, arg("Only cases of this team.")] = None,
    ) -> CasePage | None:
        check_page(page, per_page, v2.MAX_PER_PAGE)
        if team_id is not None:
            check_id(team_id, "teamId")
        filters = check_filter(to_upstream(filter)) if filter else None
        ctx = info.context
        data = await ctx.loaders.listing(
            ctx.services.v2.list_cases(
                ctx.caller,
                ctx.decoders.v2_list,
                filters=filters,
                order=order.value if order else None,
                page=page,
                per_page=per_page,
                team_id=team_id,
            )
        )
        return {"items": data["cases"], "page_info": page_info_from_meta(page, per_page, data.get("meta"))}  # type: ignore[return-value]

    @fetching(
        CASES_WINDOW,
        "The v2 cases of `cases` (same filter, order and team) as a Relay cursor connection.",
        returns="v2.connection",
    )
    async def cases_connection(
        self,
        info: Info,
        filter: CaseFilterArg = None,
        order: CaseOrderArg = None,
        team_id: Annotated[int | None, arg("Only cases of this team.")] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Case] | None:
        return await cases_connection(info, filter, order, team_id, (first, after, last, before))  # type: ignore[return-value]

    @fetching(CASE_BY_ID, "One v2 case by its ID, or null with a NOT_FOUND error.", returns="v2.case")
    async def case(self, info: Info, id: Annotated[int, arg("The v2 case ID.")]) -> Case | None:
        check_id(id, "id")
        return await info.context.loaders.case.load(id)  # type: ignore[return-value]

    @fetching(ROOT_V1, "A page of v1 cases, filtered by any v1 request parameter.", returns="v1.list")
    async def legacy_cases(
        self,
        info: Info,
        filter: LegacyCaseFilterArg = None,
        page: PageArg = 1,
        per_page: Annotated[int, arg(f"Cases per page, 1 to {v1.MAX_PER_PAGE}.")] = v1.DEFAULT_PER_PAGE,
    ) -> LegacyCasePage | None:
        check_page(page, per_page, v1.MAX_PER_PAGE)
        params = check_filter(to_upstream(filter)) if filter else {}
        ctx = info.context
        data = await ctx.services.v1.list_cases(
            ctx.caller, params, page=page, per_page=per_page, decode=ctx.decoders.v1_list
        )
        ctx.loaders.prime_legacy_cases(data["cases"])
        if ctx.plan is not None and ctx.plan.reaches(info.path.key, "items", "case"):
            # lookahead: the page's v2 cases in one awaitable (the ids each `case` would load, no more), so
            # each item's `case` finds its answer ready
            await ctx.loaders.cases_of(
                [linked_v2_id(case, ctx.settings.v2_link_label) for case in data["cases"]]
            )
        info_ = page_info(data["page"], data["per_page"], data["pages"], data["count"])
        return {"items": data["cases"], "page_info": info_}  # type: ignore[return-value]

    @fetching(
        LEGACY_CASES_WINDOW,
        "The v1 cases of `legacyCases` (same filter) as a Relay cursor connection.",
        returns="v1.connection",
    )
    async def legacy_cases_connection(
        self,
        info: Info,
        filter: LegacyCaseFilterArg = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[LegacyCase] | None:
        return await legacy_cases_connection(info, filter, (first, after, last, before))  # type: ignore[return-value]

    @fetching(
        LEGACY_CASE_BY_ID, "One v1 case by its numeric ID, or null with a NOT_FOUND error.", returns="v1.case"
    )
    async def legacy_case(self, info: Info, id: Annotated[int, arg("The v1 case ID.")]) -> LegacyCase | None:
        check_id(id, "id")
        return await info.context.loaders.legacy_case.load(id)  # type: ignore[return-value]

    @fetching(NODE, "Any object by its global ID (a `Case` or a `LegacyCase`).", returns="node")
    async def node(self, info: Info, id: Annotated[strawberry.ID, arg("A global ID.")]) -> Node | None:
        type_name, raw_id = parse_global_id(id)
        loader = info.context.loaders.case if type_name == "Case" else info.context.loaders.legacy_case
        return await loader.load(raw_id)  # type: ignore[return-value]
