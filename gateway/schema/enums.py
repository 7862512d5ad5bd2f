"""Enums for closed value sets of the v2 API."""

from __future__ import annotations

from enum import Enum

import strawberry

value = strawberry.enum_value


@strawberry.enum(description="The case status.")
class CaseStatus(Enum):
    OPEN = value("OPEN", description="Open: being worked on.")
    CLOSED = value("CLOSED", description="Closed: resolved.")


@strawberry.enum(description="The case priority.")
class Priority(Enum):
    CRITICAL = value("CRITICAL", description="Critical: the highest priority.")
    HIGH = value("HIGH", description="High.")
    MEDIUM = value("MEDIUM", description="Medium.")
    LOW = value("LOW", description="Low.")
    INFO = value("INFO", description="Informational: the lowest priority.")


@strawberry.enum(
    description="Where an SLA stands, derived by the gateway from `exceeded` and `percentElapsed`."
)
class SLAStatus(Enum):
    OK = value("OK", description="Within its time, below the warning threshold (SLA_WARNING_PERCENT).")
    WARNING = value(
        "WARNING", description="Not exceeded, but at or past the warning threshold (SLA_WARNING_PERCENT)."
    )
    EXCEEDED = value("EXCEEDED", description="Exceeded: its time has run out.")


@strawberry.enum(description="The order of the case list.")
class CaseOrder(Enum):
    RECENTLY_EDITED = value("RECENTLY_EDITED", description="Most recently updated first.")
    LEAST_RECENTLY_EDITED = value("LEAST_RECENTLY_EDITED", description="Least recently updated first.")
    PRIORITY_ASC = value("PRIORITY_ASC", description="Lowest priority first (INFO to CRITICAL).")
    PRIORITY_DESC = value("PRIORITY_DESC", description="Highest priority first (CRITICAL to INFO).")
    OPENED_ASC = value("OPENED_ASC", description="Earliest opened first.")
    OPENED_DESC = value("OPENED_DESC", description="Latest opened first.")
    CREATED_ASC = value("CREATED_ASC", description="Oldest created first.")
    CREATED_DESC = value("CREATED_DESC", description="Newest created first (the upstream's default order).")


@strawberry.enum(name="SLAStatusFilter", description="An SLA status to filter cases by.")
class SLAStatusFilter(Enum):
    WARNING = value("warning", description="Cases with an SLA near its limit (the upstream's `warning`).")
    EXCEEDED = value("exceeded", description="Cases with an exceeded SLA (the upstream's `exceeded`).")


@strawberry.enum(name="SLATypeFilter", description="An SLA type to filter cases by.")
class SLATypeFilter(Enum):
    RESOLUTION = value("resolution", description="The resolution SLA: time until the case is resolved.")
    RESPONSE = value("response", description="The response SLA: time until the case is first responded to.")
