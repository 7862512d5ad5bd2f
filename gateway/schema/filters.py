"""Typed filter inputs for v2 `cases`, and their conversion to the upstream `filters` object.

Each input field's Python name is the upstream filter name (`and_assignees` -> GraphQL
`andAssignees`), so `to_upstream` is a plain walk over the fields. List fields accept a single value
too (GraphQL input coercion), matching the reference's "a single value or an array".
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.utils.str_converters import to_camel_case

from gateway.ops.errors import BadUserInput
from gateway.schema.enums import CaseOrder, CaseStatus, Priority, SLAStatusFilter, SLATypeFilter
from gateway.schema.scalars import Date, DateOrDateTime, DateTime, RelativeDate, TimeRange
from gateway.upstream.v2 import DEFAULT_PER_PAGE, MAX_PER_PAGE

DEPRECATED = "Deprecated upstream: use {} instead."


@strawberry.input(description="A metadata key and value to match.")
class MetadataMatch:
    key: str = strawberry.field(description="The metadata key.")
    value: str = strawberry.field(description="The metadata value.")


@strawberry.input(description="A case input (custom field) and value to match.")
class FieldMatch:
    key: str = strawberry.field(description="The slug of the case input field (e.g. 'host_name').")
    value: str = strawberry.field(description="The value to search for.")


def _f(description: str, deprecated: str | None = None) -> Any:
    return strawberry.field(
        default=None,
        description=description,
        deprecation_reason=DEPRECATED.format(deprecated) if deprecated else None,
    )


@strawberry.input(description="Filters for the v2 case list. All given filters must hold together.")
class CaseFilter:
    # Assignee filters
    assignees: list[str] | None = _f(
        'A single user ID, email address, the string "unassigned", or an array of these values. Cases '
        'matching any of the specified assignees will be returned. Use "unassigned" for cases with no assignees.'
    )
    and_assignees: list[strawberry.ID] | None = _f(
        "A single user ID or an array of user IDs. Cases must have all specified assignees (AND logic)."
    )
    exclude_assignees: list[strawberry.ID] | None = _f(
        "A single user ID or an array of user IDs to exclude. Cases with any of the specified assignees "
        "will be excluded."
    )
    assigned_to_me: bool | None = _f("Filter cases assigned to the current user.")
    assignee_emails: list[str] | None = _f(
        "A single email address or an array of user email addresses.", "assignees with email addresses"
    )
    unassigned: bool | None = _f("Cases with no assignees.", 'assignees: ["unassigned"]')
    # Author filters
    authors: list[str] | None = _f(
        'A single author user ID, email address, the string "tines", or an array of these values. Cases '
        'created by any of the specified authors will be returned. Use "tines" for cases created via automation.'
    )
    exclude_authors: list[strawberry.ID] | None = _f(
        "A single author user ID or an array of author user IDs to exclude."
    )
    author_emails: list[str] | None = _f(
        "A single email address or an array of author emails.", "authors with email addresses"
    )
    # Tag filters
    tags: list[str] | None = _f(
        "A single tag name or an array of tag names (behaves the same as andTags). Cases must have all "
        "specified tags."
    )
    and_tags: list[str] | None = _f("Tag names that cases must all have.")
    or_tags: list[str] | None = _f("Tag names of which cases must have at least one.")
    exclude_tags: list[str] | None = _f("Tag names to exclude: cases with any of them are excluded.")
    # Priority filters
    priority: list[Priority] | None = _f(
        "A single priority or an array of priorities. Cases matching any of them will be returned."
    )
    exclude_priorities: list[Priority] | None = _f("A single priority or an array of priorities to exclude.")
    # Status filters
    status: CaseStatus | None = _f("OPEN or CLOSED.")
    sub_status_names: list[str] | None = _f(
        "A single sub status name or an array of them. Cases matching any of them will be returned."
    )
    exclude_sub_status_names: list[str] | None = _f(
        "A single sub status name or an array of them to exclude."
    )
    # Metadata filters
    metadata: list[MetadataMatch] | None = _f(
        "Metadata key/value pairs the case must all match (same as andMetadata)."
    )
    and_metadata: list[MetadataMatch] | None = _f("Metadata key/value pairs the case must all match.")
    or_metadata: list[MetadataMatch] | None = _f(
        "Metadata key/value pairs of which the case must match at least one."
    )
    # Field filters
    fields: list[FieldMatch] | None = _f("Case input values the case must all match (same as andFields).")
    and_fields: list[FieldMatch] | None = _f("Case input values the case must all match.")
    or_fields: list[FieldMatch] | None = _f("Case input values of which the case must match at least one.")
    # Date filters
    start_date: DateOrDateTime | None = _f(
        "Cases created on or after this date (a date is its start of day)."
    )
    end_date: DateOrDateTime | None = _f("Cases created before or on this date (a date is its end of day).")
    relative_date: RelativeDate | None = _f("Cases created in this relative date range.")
    time_range: TimeRange | None = _f("Cases created within this time of day range.")
    resolved_at_start_date: DateOrDateTime | None = _f("Cases resolved on or after this date.")
    resolved_at_end_date: DateOrDateTime | None = _f("Cases resolved before or on this date.")
    resolved_at_relative_date: RelativeDate | None = _f("Cases resolved in this relative date range.")
    updated_at_start_date: DateOrDateTime | None = _f("Cases updated on or after this date.")
    updated_at_end_date: DateOrDateTime | None = _f("Cases updated before or on this date.")
    updated_at_relative_date: RelativeDate | None = _f("Cases updated in this relative date range.")
    # SLA filters
    sla_status: list[SLAStatusFilter] | None = _f(
        "SLA statuses of which a case must match at least one (OR logic)."
    )
    and_sla_status: list[SLAStatusFilter] | None = _f("SLA statuses a case must all match (AND logic).")
    exclude_sla_status: list[SLAStatusFilter] | None = _f("SLA statuses to exclude.")
    sla_type: list[SLATypeFilter] | None = _f("SLA types of which a case must match at least one (OR logic).")
    and_sla_type: list[SLATypeFilter] | None = _f("SLA types a case must all match (AND logic).")
    exclude_sla_type: list[SLATypeFilter] | None = _f("SLA types to exclude.")
    sla: list[SLAStatusFilter] | None = _f("SLA statuses (OR logic).", "slaStatus")
    # Text search filters
    search: str | None = _f("Searches against case name, description and ID.")
    name: str | None = _f("Searches against case name.")
    comment: str | None = _f("Searches against case comments.")
    note: str | None = _f("Searches against case notes.")
    # Other filters
    case_ids: list[int] | None = _f("A single case ID or an array of case IDs.")
    child_team_ids: list[int] | None = _f("Cases belonging to any of these child teams.")
    records: list[str] | None = _f(
        "Record result values: cases containing a record matching any of them. Large text record fields are "
        "not queryable."
    )
    subscribed: bool | None = _f("Cases the current user is subscribed to.")
    my_open_tasks: bool | None = _f("Cases that have open tasks assigned to the current user.")


@strawberry.input(
    description="Filters for the v1 case list (the request parameters of GET /api/v1/cases). All given must hold."
)
class LegacyCaseFilter:
    id: int | None = _f("ID of the case.")
    client: int | None = _f("ID of the root (parent) client the case is assigned to.")
    location: int | None = _f("ID of the client location the case is assigned to.")
    case_region: int | None = _f("ID of the case region the case is assigned to.")
    case_status: int | None = _f("ID of the case status the case currently resides in.")
    created_from: Date | None = _f("Created on or after the date, as determined by the user.")
    created_to: Date | None = _f("Created on or before the date, as determined by the user.")
    from_: Date | None = strawberry.field(
        name="from", default=None, description="Alias of createdFrom (sent as the upstream alias `From`)."
    )
    to_: Date | None = strawberry.field(
        name="to", default=None, description="Alias of createdTo (sent as the upstream alias `To`)."
    )
    created_from_system: DateTime | None = _f(
        "Created on or after the timestamp, as determined by the system."
    )
    created_to_system: DateTime | None = _f(
        "Created on or before the timestamp, as determined by the system."
    )
    due_from: Date | None = _f("Due on or after the date.")
    due_to: Date | None = _f("Due on or before the date.")
    updated_from: DateTime | None = _f("Updated on or after the timestamp.")
    updated_to: DateTime | None = _f("Updated on or before the timestamp.")
    is_request: bool | None = _f("When true, only return case requests. When false, only return cases.")
    primary_contact: int | None = _f("ID of the primary client contact assigned to the case.")
    primary_investigator: int | None = _f("ID of the primary investigator assigned to the case.")
    primary_manager: int | None = _f("ID of the primary case manager assigned to the case.")
    primary_salesperson: int | None = _f("ID of the primary salesperson assigned to the case.")
    primary_subject: int | None = _f("ID of the primary subject assigned to the case.")
    reference_value_1: str | None = _f(
        "Value of the 1st reference on the case (e.g. a claim number). The corresponding reference label is "
        "defined in the case type configuration."
    )
    reference_value_2: str | None = _f("Value of the 2nd reference on the case (if in use).")
    reference_value_3: str | None = _f("Value of the 3rd reference on the case (if in use).")
    series_number: int | None = _f(
        "The series number, as indicated by the case number. Related/Re-Opened cases share the series number."
    )
    series_instance: int | None = _f(
        "The series instance, as indicated by the case number. Incremented each time a case is re-opened."
    )
    case_number: str | None = _f("The fully formatted Trackops case number, as it appears in your system.")


# The arguments of every v2 case list (`cases`, `casesConnection`, a user's or a tag's `cases`...).
CaseFilterArg = Annotated[
    CaseFilter | None,
    strawberry.argument(
        description="Filters; all given must hold (for a user's or a tag's cases: beside being theirs)."
    ),
]
CaseOrderArg = Annotated[
    CaseOrder | None,
    strawberry.argument(description="The order (upstream default: CREATED_DESC, newest created first)."),
]
RelatedFirstArg = Annotated[
    int,
    strawberry.argument(
        description=f"How many cases: the first `first` in `order`, 1 to {MAX_PER_PAGE} (default {DEFAULT_PER_PAGE})."
    ),
]
LegacyCaseFilterArg = Annotated[
    LegacyCaseFilter | None, strawberry.argument(description="Filters; all given must hold.")
]


# Input fields whose upstream name is not their Python name.
UPSTREAM_NAMES = {"from_": "From", "to_": "To"}
ALIASES = {"From": "created_from", "To": "created_to"}


def to_upstream(value: Any) -> Any:
    """An input value as the upstream expects it: inputs as objects without unset fields, enums as values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is not None and item is not strawberry.UNSET:
                out[UPSTREAM_NAMES.get(field.name, field.name)] = to_upstream(item)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [to_upstream(item) for item in value]
    return value


def check_filter(filters: dict[str, Any], argument: str = "filter") -> dict[str, Any]:
    """Reject what the upstream would refuse, before any call: ids below 1, empty lists and strings, an alias
    beside its parameter."""
    for key, value in filters.items():
        if value == [] or value == "":
            name = f"{argument}.{to_camel_case(ALIASES.get(key, key))}"
            raise BadUserInput(f"{name} must not be empty.", argument=name)
        numbers = value if isinstance(value, list) else [value]
        for number in numbers:
            if isinstance(number, int) and not isinstance(number, bool) and number < 1:
                name = f"{argument}.{to_camel_case(ALIASES.get(key, key))}"
                raise BadUserInput(f"{name} must be a positive id, got {number}.", argument=name)
    for alias, parameter in ALIASES.items():
        if alias in filters and parameter in filters:
            raise BadUserInput(
                f"{argument}.{alias.lower()} is an alias of {argument}.{to_camel_case(parameter)}: give one of them.",
                argument=f"{argument}.{alias.lower()}",
            )
    return filters
