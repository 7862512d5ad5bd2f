"""Custom scalars. Output values are upstream strings passed through unchanged (no per-field
re-formatting) once they have the scalar's form: an upstream date that is not one is an
UPSTREAM_BAD_RESPONSE error on its field, never served. Input values are validated when the query is
validated, so a bad date never reaches the upstream, and normalised to the form the upstream documents.
`JSON` (case metadata) passes any upstream JSON value nested at most `MAX_JSON_DEPTH` levels."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from gateway.ops.errors import UpstreamBadResponse
from gateway.planning.execution import passes_strings_matching

DateTime = NewType("DateTime", str)
Date = NewType("Date", str)
DateOrDateTime = NewType("DateOrDateTime", str)
RelativeDate = NewType("RelativeDate", str)
TimeRange = NewType("TimeRange", str)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")
_RELATIVE = re.compile(r"today|yesterday|[1-9]\d{0,3} (day|week|month|year)s?")
# What an upstream may send: as an input, but any number of fraction digits
_DATETIME_OUT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_DATE_OR_DATETIME_OUT = re.compile(f"{_DATE.pattern}|{_DATETIME_OUT.pattern}")
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


MAX_JSON_DEPTH = 64  # lists and objects in a JSON value; the answer's encoder stops at 254 levels in all
JSON_SPEC = "https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf"


def _output(pattern: re.Pattern[str], name: str) -> Any:
    """The serialiser of an upstream date or timestamp: a string of the scalar's form passes unchanged (so the
    compiled fast path copies it after the same check), anything else is the upstream's error."""

    @passes_strings_matching(pattern)
    def serialise(value: Any) -> Any:
        if isinstance(value, str) and pattern.fullmatch(value):
            return value
        if isinstance(value, datetime | date):
            return value.isoformat()
        raise UpstreamBadResponse(f"The upstream sent a {name} that is not one.")

    return serialise


def _json_output(value: Any) -> Any:
    """Any JSON value, unless it nests deeper than MAX_JSON_DEPTH (the answer could not be encoded)."""
    level: list[Any] = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return value
    if any(isinstance(item, dict | list) for item in level):
        raise UpstreamBadResponse(
            f"The upstream sent a JSON value nested deeper than {MAX_JSON_DEPTH} levels."
        )
    return value


SCALARS: dict[object, ScalarDefinition] = {
    JSON: strawberry.scalar(
        name="JSON",
        description=f"The `JSON` scalar type represents JSON values as specified by [ECMA-404]({JSON_SPEC}).",
        specified_by_url=JSON_SPEC,
        serialize=_json_output,
        parse_value=lambda value: value,
    ),
    DateTime: strawberry.scalar(
        name="DateTime",
        description="An ISO 8601 timestamp in UTC, e.g. 2024-03-25T15:40:39Z. As input, an offset is "
        "converted to UTC and a timestamp without one is read as UTC.",
        serialize=_output(_DATETIME_OUT, "DateTime"),
        parse_value=parse_datetime,
    ),
    Date: strawberry.scalar(
        name="Date",
        description="A calendar date, YYYY-MM-DD.",
        serialize=_output(_DATE, "Date"),
        parse_value=parse_date,
    ),
    DateOrDateTime: strawberry.scalar(
        name="DateOrDateTime",
        description="An ISO 8601 timestamp, or a date (YYYY-MM-DD) which the upstream reads as the start "
        "of that day for a lower bound and the end of that day for an upper bound.",
        serialize=_output(_DATE_OR_DATETIME_OUT, "DateOrDateTime"),
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
