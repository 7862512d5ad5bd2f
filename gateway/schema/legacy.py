"""The v1 `LegacyCase` and the types nested in it, read straight from the upstream dicts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gateway.ops.config import Settings
from gateway.schema.context import Context
from gateway.schema.declarations import V2_BY_IDS, derived, fetching
from gateway.schema.node import Node, global_id
from gateway.schema.page import PageNumberInfo
from gateway.schema.scalars import Date, DateTime
from gateway.upstream.links import REFERENCES, reference_labels, v2_id_of
from gateway.upstream.loaders import now_or_later

if TYPE_CHECKING:
    from gateway.schema.case import Case

Parent = strawberry.Parent[dict[str, Any]]
Info = strawberry.Info[Context]


def legacy_global_id(case: dict[str, Any], settings: Settings) -> str:
    """`LegacyCase.id`: the global id of a v1 case."""
    return global_id("LegacyCase", case.get("id"))  # type: ignore[arg-type]


def legacy_id(case: dict[str, Any], settings: Settings) -> int:
    """`LegacyCase.legacyId`."""
    return case.get("id")  # type: ignore[no-any-return]  # missing: the upstream's error (non-null)


def references(case: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """`LegacyCase.references`: the references in use, each with its label."""
    labels = reference_labels(case)
    out = []
    for position in (1, 2, 3):
        label = labels[position - 1] if position <= len(labels) else None
        value = case.get(f"reference_value_{position}")
        if label is not None or value is not None:
            out.append({"position": position, "label": label, "value": value})
    return out


def linked_case(case: dict[str, Any], context: Context) -> Any:
    """`LegacyCase.case`: the v2 case it points at (None), or its loading: known at once when the list above
    looked ahead (`Query.legacyCases`)."""
    v2_id = v2_id_of(case, context.settings.v2_link_label)
    if v2_id is None:
        return None
    return now_or_later(context.loaders.case, v2_id)


# The records a v1 case points at. The v1 API numbers each kind in its own table (client 4, region 4 and
# status 4 are three records), so each kind is a type of its own: `__typename` and `id` together name one
# record, as normalized client caches (Apollo Client, urql, Relay) key them. The investigator, manager and
# salesperson are Trackops users, one table: one type. Each type says which filter takes its `id`.
@strawberry.type(description="A record of the v1 API that a case points at: its number and name.")
class V1Record:
    id: int = strawberry.field(
        description="The v1 ID of this record in its own table (clients, locations, regions... are each numbered "
        "on their own): unique within this type, and the value the v1 filter named in the type's description "
        "takes."
    )
    name: str | None = strawberry.field(description="Its name.")


@strawberry.type(
    description="A v1 client: the root (parent) client a case is assigned to. Its `id` is what "
    "`LegacyCaseFilter.client` takes."
)
class LegacyClient(V1Record):
    pass


@strawberry.type(description="A v1 client location. Its `id` is what `LegacyCaseFilter.location` takes.")
class LegacyLocation(V1Record):
    pass


@strawberry.type(description="A v1 case region. Its `id` is what `LegacyCaseFilter.caseRegion` takes.")
class LegacyCaseRegion(V1Record):
    pass


@strawberry.type(
    description="A v1 case status (the v1 API's own statuses, not the v2 `CaseStatus`). Its `id` is what "
    "`LegacyCaseFilter.caseStatus` takes."
)
class LegacyCaseStatus(V1Record):
    pass


@strawberry.type(description="A v1 client contact. Its `id` is what `LegacyCaseFilter.primaryContact` takes.")
class LegacyContact(V1Record):
    pass


@strawberry.type(
    description="A v1 (Trackops) user: a case's investigator, manager or salesperson (one table of users). "
    "Its `id` is what `LegacyCaseFilter.primaryInvestigator`, `primaryManager` and `primarySalesperson` take."
)
class LegacyUser(V1Record):
    pass


@strawberry.type(
    description="A v1 subject (a person or entity under investigation). Its `id` is what "
    "`LegacyCaseFilter.primarySubject` takes."
)
class LegacySubject(V1Record):
    pass


@strawberry.type(description="The case type: its name and the labels of the case's three references.")
class CaseType:
    id: int = strawberry.field(description="The v1 case type ID, unique among case types.")
    name: str | None = strawberry.field(description="The case type name.")
    reference_labels: list[str | None] | None = strawberry.field(
        description="Labels of reference_value_1..3, in order (null where a reference is not in use)."
    )


@strawberry.type(description="A case reference with its label from the case type.")
class Reference:
    position: int = strawberry.field(description="1, 2 or 3: which referenceValue it is.")
    label: str | None = strawberry.field(description="The label from the case type configuration.")
    value: str | None = strawberry.field(description="The reference's value.")


@strawberry.type(
    description="A case in the v1 investigations API (Trackops). Cases are the core objects that store the "
    "majority of data throughout the system."
)
class LegacyCase(Node):
    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, dict) and "case_number" in obj

    @derived("The global ID of the case (see `Query.node`).", reads=("id",), compute=legacy_global_id)
    def id(self, parent: Parent, info: Info) -> strawberry.ID:
        return legacy_global_id(parent, info.context.settings)  # type: ignore[return-value]

    @derived("The numeric v1 ID of the case.", name="legacyId", reads=("id",), compute=legacy_id)
    def legacy_id(self, parent: Parent, info: Info) -> int:
        return legacy_id(parent, info.context.settings)

    case_number: str | None = strawberry.field(
        description="The fully formatted Trackops case number, as it appears in your system."
    )
    series_number: int | None = strawberry.field(
        description="The series number, as indicated by the case number. Related/Re-Opened cases share it."
    )
    series_instance: int | None = strawberry.field(
        description="The series instance: incremented each time a case is re-opened (01, 02, 03...)."
    )
    client: LegacyClient | None = strawberry.field(
        description="The root (parent) client the case is assigned to."
    )
    location: LegacyLocation | None = strawberry.field(
        description="The client location the case is assigned to."
    )
    case_region: LegacyCaseRegion | None = strawberry.field(
        description="The case region the case is assigned to."
    )
    case_status: LegacyCaseStatus | None = strawberry.field(
        description="The case status the case currently resides in."
    )
    case_type: CaseType | None = strawberry.field(description="The case type, with its reference labels.")
    is_request: bool | None = strawberry.field(description="True for a case request, false for a case.")
    created_on: Date | None = strawberry.field(description="Created on this date, as determined by the user.")
    created_at: DateTime | None = strawberry.field(
        description="Created at this time, as determined by the system."
    )
    due_on: Date | None = strawberry.field(description="The due date.")
    updated_at: DateTime | None = strawberry.field(description="When the case was last updated.")
    primary_contact: LegacyContact | None = strawberry.field(description="The primary client contact.")
    primary_investigator: LegacyUser | None = strawberry.field(description="The primary investigator.")
    primary_manager: LegacyUser | None = strawberry.field(description="The primary case manager.")
    primary_salesperson: LegacyUser | None = strawberry.field(description="The primary salesperson.")
    primary_subject: LegacySubject | None = strawberry.field(description="The primary subject.")
    reference_value_1: str | None = strawberry.field(
        description="Value of the 1st reference (e.g. a claim number); its label is in caseType.referenceLabels."
    )
    reference_value_2: str | None = strawberry.field(description="Value of the 2nd reference, if in use.")
    reference_value_3: str | None = strawberry.field(description="Value of the 3rd reference, if in use.")

    @derived(
        "The references in use, each with its label. No upstream call.", reads=REFERENCES, compute=references
    )
    def references(self, parent: Parent, info: Info) -> list[Reference]:
        return references(parent, info.context.settings)  # type: ignore[return-value]

    @fetching(
        V2_BY_IDS,
        "The v2 case this case points at (the reference labelled V2_LINK_LABEL, default 'Tines case'), or "
        "null when it has none; null with a NOT_FOUND error when that v2 case does not exist.",
        reads=REFERENCES,
        returns="v2.case",
        compute=linked_case,
    )
    def case(
        self, parent: Parent, info: Info
    ) -> Annotated[Case, strawberry.lazy("gateway.schema.case")] | None:
        return linked_case(parent, info.context)  # type: ignore[no-any-return]


@strawberry.type(description="A page of v1 cases.")
class LegacyCasePage:
    items: list[LegacyCase] = strawberry.field(description="The cases on this page.")
    page_info: PageNumberInfo = strawberry.field(
        description="Where this page stands (from the v1 X-* headers)."
    )
