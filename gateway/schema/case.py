"""The v2 `Case` and the types nested in it.

Every type here is read straight from the upstream JSON dict: the Python field name is the upstream
key (`opened_by` -> GraphQL `openedBy`), and the schema's default resolver reads `dict[key]`. Only
fields that fetch something (links, linked cases, pages of activities and records, a user's or a
tag's cases) or derive something (`SLA.status`, global ids) have resolvers, written on the type
itself; they fetch through the per-request dataloaders in `gateway/loaders.py`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from gateway.context import Context
from gateway.cost import (
    ACTIVITIES_WINDOW,
    CASE_PAGE,
    LEGACY_LINK,
    RECORDS_WINDOW,
    RELATED,
    RELATED_WINDOW,
    V2_LINKED_BY_IDS,
    derived,
    fetching,
)
from gateway.errors import BadUserInput, UpstreamBadResponse, upstream_object
from gateway.links import v1_id_of
from gateway.loaders import PageKey, all_now_or_later, now_or_later
from gateway.schema.case_connections import embedded_window, related_connection
from gateway.schema.connection import After, Before, Connection, First, Last
from gateway.schema.enums import CaseOrder, CaseStatus, Priority, SLAStatus
from gateway.schema.filters import (
    CaseFilter,
    CaseFilterArg,
    CaseOrderArg,
    RelatedFirstArg,
    check_filter,
    to_upstream,
)
from gateway.schema.node import Node, global_id
from gateway.schema.page import PageArg, PageNumberInfo, check_page, page_info_from_meta
from gateway.schema.scalars import DateTime
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


def page_of(key: str) -> Any:
    """A `PageMeta` page field: the page number in the upstream's page URL under `key` (never the URL)."""

    def page(meta: Any, context: Context) -> int | None:
        return page_number(upstream_object(meta).get(key))

    return page


def user_key(user: dict[str, Any], context: Context) -> Any:
    """`Assignee.id`: the user's ID."""
    return upstream_object(user).get("user_id")


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

    @fetching(
        RELATED,
        "The cases assigned to this user: the first `first` in `order` (the any-of filter is `assignees`).",
        reads=("user_id",),
        returns="v2.case",
        result_reads=("assignees",),
    )
    async def cases(
        self,
        parent: Parent,
        info: Info,
        filter: CaseFilterArg = None,
        order: CaseOrderArg = None,
        first: RelatedFirstArg = DEFAULT_PER_PAGE,
    ) -> list[Case] | None:
        user = str(upstream_object(parent)["user_id"])
        return await related_cases(info, "assignee", user, filter, order, first)

    cases_connection = related_cases_connection("assignee", "user_id", "The cases assigned to this user")


@strawberry.type(description="A tag associated with cases.")
class Tag:
    id: int = strawberry.field(description="The tag's ID, unique among tags.")
    name: str = strawberry.field(description="The tag's name.")

    @fetching(
        RELATED,
        "The cases with this tag: the first `first` in `order` (the any-of filter is `or_tags`).",
        reads=("name",),
        returns="v2.case",
        result_reads=("tags",),
    )
    async def cases(
        self,
        parent: Parent,
        info: Info,
        filter: CaseFilterArg = None,
        order: CaseOrderArg = None,
        first: RelatedFirstArg = DEFAULT_PER_PAGE,
    ) -> list[Case] | None:
        return await related_cases(info, "tag", str(upstream_object(parent)["name"]), filter, order, first)

    cases_connection = related_cases_connection("tag", "name", "The cases with this tag")


@strawberry.type(description="An object describing the case sub-status.")
class SubStatus:
    id: int = strawberry.field(description="The sub-status ID, unique among sub-statuses.")
    name: str = strawberry.field(description="The sub-status name, e.g. 'To do'.")


@strawberry.type(description="The team the case is within.")
class Team:
    id: int = strawberry.field(description="The team ID, unique among teams.")
    name: str = strawberry.field(description="The team name.")


@strawberry.type(description="The case input (custom field definition) a field value belongs to.")
class CaseInput:
    id: int = strawberry.field(description="The case input ID, unique among case inputs.")
    key: str = strawberry.field(description="The case input's slug, used by the `fields` filters.")
    name: str = strawberry.field(description="The case input's display name.")


@strawberry.type(description="A field value for the case.")
class CaseField:
    id: int = strawberry.field(
        description="The ID of this field value (one case's value of one case input), unique among field values."
    )
    value: str | None = strawberry.field(description="The value.")
    case_input: CaseInput | None = strawberry.field(description="The case input this value is for.")


@strawberry.type(description="A team case action taken within the case.")
class Activity:
    id: int = strawberry.field(description="The activity ID, unique among the activities of every case.")
    activity_type: str = strawberry.field(
        description="The kind of action, e.g. CREATED, COMMENTED, ASSIGNED, STATUS_CHANGED."
    )
    value: str | None = strawberry.field(description="The action's value, e.g. the comment text.")
    user: Assignee | None = strawberry.field(description="The user who took the action.")
    created_at: DateTime = strawberry.field(description="When the action was taken.")


@strawberry.type(description="A case action for a downstream action associated with the case.")
class Action:
    id: int = strawberry.field(description="The action ID, unique among the actions of every case.")
    url: str | None = strawberry.field(description="The URL the action opens.")
    label: str | None = strawberry.field(description="The action's label.")
    action_type: str | None = strawberry.field(description="The action type, e.g. 'page'.")


@strawberry.type(description="A case linked to this case, as the upstream lists it: ID and name.")
class LinkedCaseRef:
    case_id: int = strawberry.field(description="The linked case's ID.")
    name: str | None = strawberry.field(description="The linked case's name.")


def sla_status(sla: dict[str, Any], context: Context) -> SLAStatus:
    """`SLA.status`, from the SLA's `exceeded` and `percent_elapsed`."""
    sla = upstream_object(sla)
    if sla.get("exceeded"):
        return SLAStatus.EXCEEDED
    elapsed = sla.get("percent_elapsed") or 0
    if not isinstance(elapsed, int | float):
        raise UpstreamBadResponse("The upstream sent an SLA percent_elapsed that is not a number.")
    if elapsed >= context.settings.sla_warning_percent:
        return SLAStatus.WARNING
    return SLAStatus.OK


def case_global_id(case: dict[str, Any], context: Context) -> str:
    """`Case.id`: the global id of a v2 case."""
    return global_id("Case", case["case_id"])


@strawberry.type(description="An SLA on the case. Times are in seconds.")
class SLA:
    remaining_time_seconds: float | None = strawberry.field(
        description="Seconds left before the SLA is exceeded."
    )
    current_time_seconds: float | None = strawberry.field(description="Seconds elapsed on the SLA so far.")
    percent_elapsed: float | None = strawberry.field(description="Percent of the SLA time elapsed.")
    exceeded: bool | None = strawberry.field(description="Whether the SLA has been exceeded.")
    sla_type: str | None = strawberry.field(
        description="The SLA type, e.g. response, resolution, completion."
    )

    @derived(
        "OK, WARNING (at or past the gateway's SLA_WARNING_PERCENT of the time, default 75) or "
        "EXCEEDED. Derived by the gateway; no upstream call.",
        reads=("exceeded", "percent_elapsed"),
        compute=sla_status,
    )
    def status(self, parent: Parent, info: Info) -> SLAStatus:
        return sla_status(parent, info.context)


@strawberry.type(description="One value within a record result.")
class RecordValue:
    id: int = strawberry.field(
        description="The ID of this value (one record's value of one record field), unique among record values."
    )
    name: str = strawberry.field(description="The record field name.")
    value: str | None = strawberry.field(description="The record field value.")


@strawberry.type(description="One record: the values of a record type's fields, as captured at one time.")
class RecordResult:
    id: int = strawberry.field(description="The record ID, unique among the records of every case.")
    results: list[RecordValue] = strawberry.field(description="The record's field ids, names and values.")
    created_at: DateTime | None = strawberry.field(description="When the record was created.")


@strawberry.type(description="The records associated with the case, grouped by record type.")
class Record:
    record_type_id: int = strawberry.field(description="The record type ID.")
    record_type_name: str = strawberry.field(description="The record type name.")
    record_type_record_results: list[RecordResult] = strawberry.field(
        description="The records of this type on the case."
    )


@strawberry.type(
    description="One record of a case, with its record type (an edge of `Case.recordsConnection`)."
)
class CaseRecord:
    record_type_id: int = strawberry.field(description="The record type ID.")
    record_type_name: str = strawberry.field(description="The record type name.")
    id: int = strawberry.field(description="The record ID, unique among the records of every case.")
    results: list[RecordValue] = strawberry.field(description="The record's field ids, names and values.")
    created_at: DateTime | None = strawberry.field(description="When the record was created.")


@strawberry.type(
    description="A closure requirement: a formula rule that must evaluate to true to close the case."
)
class ClosureCondition:
    formula: str = strawberry.field(description="The formula, e.g. '=SIZE(team_case.assignees) > 2'.")
    name: str | None = strawberry.field(description="The condition's name.")


@strawberry.type(description="An element of a block.")
class BlockElement:
    id: int = strawberry.field(
        description="The element ID, unique among elements (the upstream sends it as `elementId`)."
    )
    element_id: int = strawberry.field(description="The ID of the element the block shows.")


@strawberry.type(
    description="A block on the case: its type and element ids. It has no `id`: block IDs restart at 1 in "
    "every case, so normalized client caches keep a block inside its case."
)
class Block:
    id: int = strawberry.field(
        name="blockId",
        description="The block's ID within its case (not unique across cases: 1, 2... in each).",
    )
    block_type: str = strawberry.field(description="The block type, e.g. 'note'.")
    elements: list[BlockElement] = strawberry.field(description="The block's elements.")


@strawberry.type(description="A user assigned to a task.")
class TaskAssignee:
    id: strawberry.ID = strawberry.field(description="The user's ID (`Assignee.userId`), unique among users.")


@strawberry.type(description="A task associated with the case.")
class Task:
    id: int = strawberry.field(description="The task ID, unique among the tasks of every case.")
    description: str | None = strawberry.field(description="What the task is.")
    completed: bool = strawberry.field(description="Whether the task is completed.")
    assignees: list[TaskAssignee] = strawberry.field(description="The users assigned to the task.")
    created_at: DateTime | None = strawberry.field(description="When the task was created.")
    updated_at: DateTime | None = strawberry.field(description="When the task was last updated.")


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
        return page_of("current_page")(parent, info.context)  # type: ignore[no-any-return]

    @derived(
        "The previous page's number, if any.", reads=("previous_page",), compute=page_of("previous_page")
    )
    def previous_page(self, parent: Parent, info: Info) -> int | None:
        return page_of("previous_page")(parent, info.context)  # type: ignore[no-any-return]

    @derived("The next page's number, if any.", reads=("next_page",), compute=page_of("next_page"))
    def next_page(self, parent: Parent, info: Info) -> int | None:
        return page_of("next_page")(parent, info.context)  # type: ignore[no-any-return]

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


@strawberry.type(description="A case in the v2 cases API: the core object holding the case's data.")
class Case(Node):
    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, dict) and "case_id" in obj

    @derived("The global ID of the case (see `Query.node`).", reads=("case_id",), compute=case_global_id)
    def id(self, parent: Parent, info: Info) -> strawberry.ID:
        return case_global_id(parent, info.context)  # type: ignore[return-value]

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
