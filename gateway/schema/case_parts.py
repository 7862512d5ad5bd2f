"""The plain types nested in a v2 case (sub-status, team, fields, activities, actions, SLAs, records,
blocks, tasks): each read straight from the upstream dict, the Python field name being the upstream key.
Only `SLA.status` is derived (no upstream call)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gateway.ops.config import Settings
from gateway.ops.errors import UpstreamBadResponse, upstream_object
from gateway.schema.context import Context
from gateway.schema.declarations import (
    derived,
)
from gateway.schema.enums import SLAStatus
from gateway.schema.scalars import DateTime

if TYPE_CHECKING:
    from gateway.schema.case import Assignee

Parent = strawberry.Parent[dict[str, Any]]
Info = strawberry.Info[Context]


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
    user: Annotated[Assignee, strawberry.lazy("gateway.schema.case")] | None = strawberry.field(
        description="The user who took the action."
    )
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


def sla_status(sla: dict[str, Any], settings: Settings) -> SLAStatus:
    """`SLA.status`, from the SLA's `exceeded` and `percent_elapsed`."""
    sla = upstream_object(sla)
    if sla.get("exceeded"):
        return SLAStatus.EXCEEDED
    elapsed = sla.get("percent_elapsed") or 0
    if not isinstance(elapsed, int | float):
        raise UpstreamBadResponse("The upstream sent an SLA percent_elapsed that is not a number.")
    if elapsed >= settings.sla_warning_percent:
        return SLAStatus.WARNING
    return SLAStatus.OK


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
        return sla_status(parent, info.context.settings)


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
