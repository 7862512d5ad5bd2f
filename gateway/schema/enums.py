"""Enums for closed value sets of the v2 API."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="The case status.")
class CaseStatus(Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@strawberry.enum(description="The case priority.")
class Priority(Enum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    INFO = "INFO"


@strawberry.enum(
    description="Where an SLA stands, derived by the gateway from `exceeded` and `percentElapsed`."
)
class SLAStatus(Enum):
    OK = "OK"
    WARNING = "WARNING"
    EXCEEDED = "EXCEEDED"


@strawberry.enum(description="The order of the case list.")
class CaseOrder(Enum):
    RECENTLY_EDITED = "RECENTLY_EDITED"
    LEAST_RECENTLY_EDITED = "LEAST_RECENTLY_EDITED"
    PRIORITY_ASC = "PRIORITY_ASC"
    PRIORITY_DESC = "PRIORITY_DESC"
    OPENED_ASC = "OPENED_ASC"
    OPENED_DESC = "OPENED_DESC"
    CREATED_ASC = "CREATED_ASC"
    CREATED_DESC = "CREATED_DESC"


@strawberry.enum(name="SLAStatusFilter", description="An SLA status to filter cases by.")
class SLAStatusFilter(Enum):
    WARNING = "warning"
    EXCEEDED = "exceeded"


@strawberry.enum(name="SLATypeFilter", description="An SLA type to filter cases by.")
class SLATypeFilter(Enum):
    RESOLUTION = "resolution"
    RESPONSE = "response"
