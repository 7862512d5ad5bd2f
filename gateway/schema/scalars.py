"""Custom scalars. Output values are upstream strings passed through unchanged (no per-field
re-formatting); input values are validated when the query is validated, so a bad date never
reaches the upstream, and normalised to the form the upstream documents."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from gateway.execution import passes_strings_unchanged

DateTime = NewType("DateTime", str)
Date = NewType("Date", str)
DateOrDateTime = NewType("DateOrDateTime", str)
RelativeDate = NewType("RelativeDate", str)
TimeRange = NewType("TimeRange", str)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")
_RELATIVE = re.compile(r"today|yesterday|[1-9]\d{0,3} (day|week|month|year)s?")
_TIME_RANGE = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    return value.strip()


def parse_date(value: Any) -> str:
    text = _text(value, "Date")
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Date must be YYYY-MM-DD, got {text[:40]!r}") from None
    return text


def parse_datetime(value: Any) -> str:
    """An ISO 8601 timestamp, normalised to UTC `YYYY-MM-DDTHH:MM:SSZ` (naive means UTC)."""
    text = _text(value, "DateTime")
    try:
        if not _DATETIME.fullmatch(text):
            raise ValueError
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"DateTime must be an ISO 8601 timestamp like 2024-03-25T15:40:39Z, got {text[:40]!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_date_or_datetime(value: Any) -> str:
    text = _text(value, "DateOrDateTime")
    try:
        return parse_date(text) if _DATE.fullmatch(text) else parse_datetime(text)
    except ValueError:
        raise ValueError(
            f"expected a date (YYYY-MM-DD) or an ISO 8601 timestamp, got {text[:40]!r}"
        ) from None


def parse_relative_date(value: Any) -> str:
    text = _text(value, "RelativeDate")
    if not _RELATIVE.fullmatch(text):
        raise ValueError(
            "RelativeDate must be 'today', 'yesterday' or '<N> day(s)|week(s)|month(s)|year(s)' "
            f"such as '7 days', got {text[:40]!r}"
        )
    return text


def parse_time_range(value: Any) -> str:
    text = _text(value, "TimeRange")
    if not _TIME_RANGE.fullmatch(text):
        raise ValueError(f"TimeRange must be 24-hour 'HH:MM-HH:MM' such as '09:00-17:00', got {text[:40]!r}")
    return text


@passes_strings_unchanged
def _pass_through(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


SCALARS: dict[object, ScalarDefinition] = {
    DateTime: strawberry.scalar(
        name="DateTime",
        description="An ISO 8601 timestamp in UTC, e.g. 2024-03-25T15:40:39Z. As input, an offset is "
        "converted to UTC and a timestamp without one is read as UTC.",
        serialize=_pass_through,
        parse_value=parse_datetime,
    ),
    Date: strawberry.scalar(
        name="Date",
        description="A calendar date, YYYY-MM-DD.",
        serialize=_pass_through,
        parse_value=parse_date,
    ),
    DateOrDateTime: strawberry.scalar(
        name="DateOrDateTime",
        description="An ISO 8601 timestamp, or a date (YYYY-MM-DD) which the upstream reads as the start "
        "of that day for a lower bound and the end of that day for an upper bound.",
        serialize=_pass_through,
        parse_value=parse_date_or_datetime,
    ),
    RelativeDate: strawberry.scalar(
        name="RelativeDate",
        description="A date range relative to now: 'today', 'yesterday', or '<N> day(s)', '<N> week(s)', "
        "'<N> month(s)', '<N> year(s)' meaning the last N units (e.g. '7 days', '1 month').",
        parse_value=parse_relative_date,
    ),
    TimeRange: strawberry.scalar(
        name="TimeRange",
        description="A time-of-day range in 24-hour format, 'HH:MM-HH:MM' (e.g. '09:00-17:00'). A start "
        "later than the end spans midnight ('22:00-06:00').",
        parse_value=parse_time_range,
    ),
}
