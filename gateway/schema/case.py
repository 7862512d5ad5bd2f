"""The v2 `Case`, its pages, and the users and tags whose cases it lists.

Every type here is read straight from the upstream JSON dict: the Python field name is the upstream
key (`opened_by` -> GraphQL `openedBy`), and the schema's default resolver reads `dict[key]`. Only
fields that fetch something (links, linked cases, pages of activities and records, a user's or a
tag's cases) or derive something (global ids) have resolvers, written on the type itself; they fetch
through the per-request dataloaders in `gateway/upstream/loaders.py`. The plain types nested in a case are
in `case_parts.py`, the pages of a case's activities and records in `case_pages.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
import strawberry
from strawberry.scalars import JSON

from gateway.ops.config import Settings
from gateway.ops.errors import BadUserInput, UpstreamBadResponse, upstream_object
from gateway.schema.case_connections import embedded_window, related_connection
from gateway.schema.case_pages import ActivityPage, PageMeta, RecordPage, embedded_or_fetched_page
from gateway.schema.case_parts import (
    SLA,
    Action,
    Activity,
    Block,
    CaseField,
    CaseRecord,
    ClosureCondition,
    LinkedCaseRef,
    Record,
    SubStatus,
    Task,
    Team,
)
from gateway.schema.connection import After, Before, Connection, First, Last
from gateway.schema.context import Context
from gateway.schema.declarations import (
    ACTIVITIES_WINDOW,
    CASE_PAGE,
    LEGACY_LINK,
    RECORDS_WINDOW,
    RELATED,
    RELATED_WINDOW,
    V2_LINKED_BY_IDS,
    OfKey,
    derived,
    fetching,
)
from gateway.schema.enums import CaseOrder, CaseStatus, Priority
from gateway.schema.filters import (
    CaseFilter,
    CaseFilterArg,
    CaseOrderArg,
    RelatedFirstArg,
    check_filter,
    to_upstream,
)
from gateway.schema.node import Node, global_id
from gateway.schema.page import PageArg, PageNumberInfo
from gateway.schema.scalars import DateTime
from gateway.upstream.links import v1_id_of
from gateway.upstream.loaders import all_now_or_later, now_or_later
from gateway.upstream.v2 import DEFAULT_PER_PAGE, MAX_PER_PAGE

if TYPE_CHECKING:
    from gateway.schema.legacy import LegacyCase

Parent = strawberry.Parent[dict[str, Any]]
Info = strawberry.Info[Context]


async def related_cases(
    info: Info, kind: str, parent: str, filter: CaseFilter | None, order: CaseOrder | None, first: int
) -> list[Case]:
    if not 1 <= first <= MAX_PER_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PER_PAGE}, got {first}.", argument="first")
    filters = check_filter(to_upstream(filter)) if filter else {}
    key = (
        kind,
        parent,
        orjson.dumps(filters, option=orjson.OPT_SORT_KEYS).decode(),
        order.value if order else None,
        first,
    )
    return await info.context.loaders.related.load(key)  # type: ignore[return-value]


RELATED_KEYS = {"assignee": "assignees", "tag": "tags"}
# how to page one parent's cases: its name, and the root connection's filter for the same list
PAGE_ONE = {
    "assignee": ("user", '{andAssignees: ["<userId>"]}'),
    "tag": ("tag", '{andTags: ["<name>"]}'),
}  # the upstream key of a case telling whose it is


def related_cases_field(kind: str, id_key: str, description: str) -> Any:
    """`Assignee.cases` and `Tag.cases`: the first cases of the parent (its `id_key` names it to the upstream),
    every parent asking with the same arguments served by one any-of listing."""

    async def resolve(
        parent: Parent,
        info: Info,
        filter: CaseFilterArg = None,
        order: CaseOrderArg = None,
        first: RelatedFirstArg = DEFAULT_PER_PAGE,
    ) -> list[Case] | None:
        return await related_cases(info, kind, str(upstream_object(parent)[id_key]), filter, order, first)

    return fetching(
        RELATED,
        description,
        resolver=resolve,
        reads=(id_key,),
        returns="v2.case",
        result_reads=(RELATED_KEYS[kind],),
    )


def related_cases_connection(kind: str, id_key: str, what: str) -> Any:
    """`Assignee.casesConnection` and `Tag.casesConnection`: the parent's cases (the parent's `id_key`
    names it to the upstream) as a cursor connection."""

    async def resolve(
        parent: Parent,
        info: Info,
        filter: CaseFilterArg = None,
        order: CaseOrderArg = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Case] | None:
        window = (first, after, last, before)
        return await related_connection(info, kind, str(parent[id_key]), filter, order, window)  # type: ignore[return-value]

    parent, filter_ = PAGE_ONE[kind]
    return fetching(
        RELATED_WINDOW,
        f"{what}, as a cursor connection (in `order`): a first window for each {parent} of the answer. To page "
        f"on through one {parent}'s cases, use `Query.casesConnection(filter: {filter_})` with its cursors: a "
        f"cursor given here is bound to this {parent}, and every other {parent} the same field selects answers "
        "null with a BAD_USER_INPUT error (docs/frontend.md).",
        resolver=resolve,
        reads=(id_key,),
        returns="v2.connection",
        result_reads=(RELATED_KEYS[kind],),
    )


user_key = OfKey("user_id")  # `Assignee.id`: the user's ID


@strawberry.type(description="A user: a case author, opener, resolver, assignee or actor.")
class Assignee:
    @derived(
        "The user's ID (as `userId`), unique among users: with the type name, it keys one object per user in "
        "normalized client caches.",
        reads=("user_id",),
        compute=user_key,
    )
    def id(self, parent: Parent, info: Info) -> strawberry.ID:
        return user_key(parent, info.context)  # type: ignore[no-any-return]

    user_id: strawberry.ID = strawberry.field(description="The user's ID.")
    first_name: str | None = strawberry.field(description="The user's first name.")
    last_name: str | None = strawberry.field(description="The user's last name.")
    email: str | None = strawberry.field(description="The user's email address.")
    avatar_url: str | None = strawberry.field(description="URL of the user's avatar image (may be empty).")
    is_service_account: bool | None = strawberry.field(
        description="Whether the user is a service account (automation) rather than a person."
    )

    cases = related_cases_field(
        "assignee",
        "user_id",
        "The cases assigned to this user: the first `first` in `order` (the any-of filter is `assignees`).",
    )

    cases_connection = related_cases_connection("assignee", "user_id", "The cases assigned to this user")


@strawberry.type(description="A tag associated with cases.")
class Tag:
    id: int = strawberry.field(description="The tag's ID, unique among tags.")
    name: str = strawberry.field(description="The tag's name.")

    cases = related_cases_field(
        "tag",
        "name",
        "The cases with this tag: the first `first` in `order` (the any-of filter is `or_tags`).",
    )

    cases_connection = related_cases_connection("tag", "name", "The cases with this tag")


def case_global_id(case: dict[str, Any], settings: Settings) -> str:
    """`Case.id`: the global id of a v2 case."""
    return global_id("Case", case["case_id"])


@strawberry.type(description="A case in the v2 cases API: the core object holding the case's data.")
class Case(Node):
    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, dict) and "case_id" in obj

    @derived("The global ID of the case (see `Query.node`).", reads=("case_id",), compute=case_global_id)
    def id(self, parent: Parent, info: Info) -> strawberry.ID:
        return case_global_id(parent, info.context.settings)  # type: ignore[return-value]

    case_id: int = strawberry.field(description="The ID of the case.")
    name: str | None = strawberry.field(description="The case name.")
    description: str | None = strawberry.field(description="The case description.")
    status: CaseStatus = strawberry.field(description="The case status - open or closed.")
    sub_status: SubStatus | None = strawberry.field(description="An object describing the case sub-status.")
    priority: Priority | None = strawberry.field(
        description="The case priority - critical, high, medium, low or info."
    )
    url: str | None = strawberry.field(description="The case URL.")
    metadata: JSON | None = strawberry.field(
        description="Case related metadata represented as key-value pairs."
    )
    author: Assignee | None = strawberry.field(description="An object describing the case author.")
    opened_by: Assignee | None = strawberry.field(
        description="An object describing the user who opened the case."
    )
    resolved_by: Assignee | None = strawberry.field(
        description="An object describing the user who resolved the case."
    )
    assignees: list[Assignee] | None = strawberry.field(description="An array of users assigned to the case.")
    tags: list[Tag] | None = strawberry.field(description="An array of tags associated with the case.")
    fields: list[CaseField] | None = strawberry.field(description="An array of field values for the case.")
    activities: list[Activity] | None = strawberry.field(
        description="An array of team case actions taken within the case: the first page, as embedded in "
        "the case (no extra upstream call). `activitiesMeta` counts them all; `activityPage` fetches more."
    )
    activities_meta: PageMeta | None = strawberry.field(
        description="Metadata defining pagination params required to fetch additional activities for the case."
    )
    team: Team | None = strawberry.field(description="The team the case is within - ID & name.")
    actions: list[Action] | None = strawberry.field(
        description="An array of case actions for downstream actions associated with the case."
    )
    linked_cases: list[LinkedCaseRef] | None = strawberry.field(
        name="linkedCaseRefs",
        description="The cases linked to this case as the upstream lists them (ID & name), at no extra cost. "
        "`linkedCases` gives the full cases.",
    )
    sla: SLA | None = strawberry.field(
        description="An object describing the case SLA status. Times are in seconds."
    )
    slas: list[SLA] | None = strawberry.field(
        description="An array of SLAs for the case. Times are in seconds."
    )
    opened_at: DateTime | None = strawberry.field(
        description="ISO 8601 Timestamp representing the date and time the case was opened at."
    )
    resolved_at: DateTime | None = strawberry.field(
        description="ISO 8601 Timestamp representing the date and time the case was resolved at."
    )
    created_at: DateTime = strawberry.field(
        description="ISO 8601 Timestamp representing the date and time the case was created at."
    )
    updated_at: DateTime | None = strawberry.field(
        description="ISO 8601 Timestamp representing the date and time the case was updated at."
    )
    records: list[Record] | None = strawberry.field(
        description="An array of records associated with the case, grouped by record type. Each record result "
        "includes the field id, name, and value. The first page, as embedded; `recordPage` fetches more."
    )
    records_meta: PageMeta | None = strawberry.field(
        description="Metadata defining pagination params required to fetch additional records for the case."
    )
    closure_conditions: list[ClosureCondition] | None = strawberry.field(
        description="An array of closure requirements in the form of a set of formula rules that need to "
        "evaluate to true to enable the closing of a case."
    )
    blocks: list[Block] | None = strawberry.field(
        description="An array of block objects specifying containing the block type and block element ids."
    )
    tasks: list[Task] | None = strawberry.field(description="An array of tasks associated with the case.")

    @fetching(
        V2_LINKED_BY_IDS,
        "The cases linked to this case, in full. A linked case that no longer exists is null, with a "
        "NOT_FOUND error.",
        name="linkedCases",
        reads=("linked_cases",),
        returns="v2.case",
    )
    def full_linked_cases(self, parent: Parent, info: Info) -> list[Case | None] | None:
        refs = parent.get("linked_cases")
        if refs is None:
            return None
        if not isinstance(refs, list) or not all(isinstance(ref, dict) for ref in refs):
            raise UpstreamBadResponse("The upstream sent linked cases that are not a list of objects.")
        # One failed id (a dangling link) is an error on its own list item, not on the whole list.
        return all_now_or_later(info.context.loaders.case, [ref.get("case_id") for ref in refs])  # type: ignore[no-any-return]

    @fetching(
        CASE_PAGE,
        "A page of the case's activities, beyond the first page embedded in `activities`.",
        reads=("case_id", "activities", "activities_meta"),
        returns="v2.activities",
    )
    async def activity_page(
        self,
        parent: Parent,
        info: Info,
        page: PageArg = 1,
        per_page: Annotated[
            int, strawberry.argument(description=f"Activities per page, 1 to {MAX_PER_PAGE}.")
        ] = 20,
    ) -> ActivityPage | None:
        return await embedded_or_fetched_page(
            parent, "activities", info.context.loaders.activities, page, per_page
        )

    @fetching(
        CASE_PAGE,
        "A page of the case's records (grouped by record type), beyond the first page embedded in `records`.",
        reads=("case_id", "records", "records_meta"),
        returns="v2.records",
    )
    async def record_page(
        self,
        parent: Parent,
        info: Info,
        page: PageArg = 1,
        per_page: Annotated[
            int,
            strawberry.argument(description=f"Records per page, 1 to {MAX_PER_PAGE} (counted by record)."),
        ] = 20,
    ) -> RecordPage | None:
        return await embedded_or_fetched_page(parent, "records", info.context.loaders.records, page, per_page)

    @fetching(
        ACTIVITIES_WINDOW,
        "The case's activities, as a cursor connection.",
        reads=("case_id", "activities", "activities_meta"),
        returns="v2.activities",
    )
    async def activities_connection(
        self,
        parent: Parent,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Activity] | None:
        return await embedded_window(info, parent, "activities", (first, after, last, before))  # type: ignore[return-value]

    @fetching(
        RECORDS_WINDOW,
        "The case's records, one edge per record with its record type, as a cursor connection. The upstream "
        f"groups a page's records by type, so they are read in pages of {MAX_PER_PAGE} and ordered page by page, "
        "type by type.",
        reads=("case_id", "records", "records_meta"),
        returns="v2.records",
    )
    async def records_connection(
        self,
        parent: Parent,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[CaseRecord] | None:
        window = (first, after, last, before)
        return await embedded_window(info, parent, "records", window, fixed=MAX_PER_PAGE)  # type: ignore[return-value]

    @fetching(
        LEGACY_LINK,
        "The v1 case this case points back at (its metadata key V1_LINK_METADATA_KEY, default "
        "trackops_case_id), or null when it has none; null with a NOT_FOUND error when that v1 case does not "
        "exist.",
        reads=("metadata",),
        returns="v1.case",
    )
    def legacy_case(
        self, parent: Parent, info: Info
    ) -> Annotated[LegacyCase, strawberry.lazy("gateway.schema.legacy")] | None:
        v1_id = v1_id_of(parent, info.context.settings.v1_link_metadata_key)
        if v1_id is None:
            return None
        return now_or_later(info.context.loaders.legacy_case, v1_id)  # type: ignore[no-any-return]


@strawberry.type(description="A page of v2 cases.")
class CasePage:
    items: list[Case] = strawberry.field(description="The cases on this page.")
    page_info: PageNumberInfo = strawberry.field(description="Where this page stands.")
