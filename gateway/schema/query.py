"""The root `Query`: where each top-level field is resolved."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from gateway.context import Context
from gateway.schema.case import Case, CasePage
from gateway.schema.filters import CaseFilter, CaseOrder, to_upstream
from gateway.schema.page import check_id, check_page, page_info_from_meta
from gateway.upstream.v2 import DEFAULT_PER_PAGE, MAX_PER_PAGE


def arg(description: str) -> Any:
    return strawberry.argument(description=description)


@strawberry.type(description="Cases from the v2 cases API and the v1 investigations API, in one schema.")
class Query:
    @strawberry.field(
        description="A page of v2 cases the credential has access to, filtered and ordered. Upstream cost: one "
        "v2 call."
    )
    async def cases(
        self,
        info: strawberry.Info[Context],
        filter: Annotated[CaseFilter | None, arg("Filters; all given must hold.")] = None,
        order: Annotated[
            CaseOrder | None, arg("The order (the upstream's default: newest created first).")
        ] = None,
        page: Annotated[int, arg("The page, from 1.")] = 1,
        per_page: Annotated[int, arg(f"Cases per page, 1 to {MAX_PER_PAGE}.")] = DEFAULT_PER_PAGE,
        team_id: Annotated[int | None, arg("Only cases of this team.")] = None,
    ) -> CasePage:
        check_page(page, per_page, MAX_PER_PAGE)
        if team_id is not None:
            check_id(team_id, "teamId")
        ctx = info.context
        data = await ctx.services.v2.list_cases(
            ctx.credential,
            filters=to_upstream(filter) if filter else None,
            order=order.value if order else None,
            page=page,
            per_page=per_page,
            team_id=team_id,
        )
        ctx.loaders.prime_cases(data["cases"])
        return {"items": data["cases"], "page_info": page_info_from_meta(page, per_page, data.get("meta"))}  # type: ignore[return-value]

    @strawberry.field(
        description="One v2 case by its ID, or null with a NOT_FOUND error. Upstream cost: one v2 call, shared "
        "with other case lookups in the same query (and free if a list in the query already has it)."
    )
    async def case(
        self, info: strawberry.Info[Context], id: Annotated[int, arg("The case ID.")]
    ) -> Case | None:
        check_id(id, "id")
        return await info.context.loaders.case.load(id)  # type: ignore[return-value]
