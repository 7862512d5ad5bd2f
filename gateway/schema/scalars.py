"""Custom scalars. `DateTime` and `Date` answer RFC 3339 (`date-time` with an upper-case `T` and `Z` or a
`+hh:mm` offset; `full-date`), as their `specifiedByURL` says: an upstream string already in that form passes
through unchanged (the compiled fast path copies it after the same check), one in another ISO 8601 form the
upstreams are known to send (a space for `T`, no seconds, no offset meaning UTC, `+hhmm`) is rewritten to it,
and anything else is an UPSTREAM_BAD_RESPONSE error on its field, never served. Input values are validated
when the query is validated, so a bad date never reaches the upstream, and normalised to the form the
upstream documents. `JSON` (case metadata) passes any upstream JSON value nested at most `MAX_JSON_DEPTH`
levels.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from gateway.ops.errors import UpstreamBadResponse
from gateway.schema.declarations import passes_strings_matching

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
# What DateTime and Date answer: RFC 3339 section 5.6 `date-time` (upper case) and `full-date`
_FULL_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_RFC3339_DATE = re.compile(_FULL_DATE)
_RFC3339 = re.compile(
    _FULL_DATE + r"T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
)
RFC3339_SPEC = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6"
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


def rfc3339(text: str) -> str | None:
    """An upstream ISO 8601 timestamp in RFC 3339 form (`T`, seconds, an offset with a colon, `Z` when the
    upstream gave none: its timestamps are UTC), or None when it is not one."""
    if not _DATETIME_OUT.fullmatch(text):
        return None
    moment, zone = text[:16].replace(" ", "T"), text[16:]
    seconds = zone[: len(zone) - len(zone.lstrip(":.0123456789"))] if zone else ""
    zone = zone[len(seconds) :]
    seconds = seconds or ":00"
    if not zone:
        zone = "Z"
    elif zone != "Z" and ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    out = moment + seconds + zone
    return out if _RFC3339.fullmatch(out) else None


@passes_strings_matching(_RFC3339)
def _datetime_output(value: Any) -> str:
    """`DateTime` out: RFC 3339 as it is; another ISO 8601 form the upstreams send, rewritten to it."""
    if isinstance(value, str):
        if _RFC3339.fullmatch(value):
            return value
        out = rfc3339(value)
        if out is not None:
            return out
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat().replace("+00:00", "Z")
    raise UpstreamBadResponse("The upstream sent a DateTime that is not one.")


@passes_strings_matching(_RFC3339_DATE)
def _date_output(value: Any) -> str:
    """`Date` out: an RFC 3339 `full-date`, as the upstreams send it."""
    if isinstance(value, str) and _RFC3339_DATE.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    raise UpstreamBadResponse("The upstream sent a Date that is not one.")


def _json_output(value: Any) -> Any:
    """Any JSON value, unless it nests deeper than MAX_JSON_DEPTH (the answer could not be encoded)."""
    level = [value] if isinstance(value, dict | list) else []  # the lists and objects at one depth
    for _ in range(MAX_JSON_DEPTH):
        if not level:
            return value
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    if level:
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
        description="A timestamp, as RFC 3339 `date-time` (e.g. 2024-03-25T15:40:39Z): always a `T`, seconds "
        "and an offset (`Z` or `+hh:mm`; the upstreams send UTC). As input, any ISO 8601 timestamp: an offset is "
        "converted to UTC and a timestamp without one is read as UTC. Client code generators map it to a "
        "string (docs/frontend.md).",
        specified_by_url=RFC3339_SPEC,
        serialize=_datetime_output,
        parse_value=parse_datetime,
    ),
    Date: strawberry.scalar(
        name="Date",
        description="A calendar date, YYYY-MM-DD: RFC 3339 `full-date`.",
        specified_by_url=RFC3339_SPEC,
        serialize=_date_output,
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


# What the built-in scalars take from an upstream answer: the JSON type the references give them, nothing that
# the GraphQL spec's output coercion would turn into one (7 -> "7", true -> 1, 1 -> true). graphql-core 3.3
# refuses to redefine a built-in scalar, so the executor checks these before the scalar's own serialiser
# (`gateway/planning/execution.py`, `EarlyExecutor.complete_leaf_value`); input coercion stays the spec's.
# The upstream ids the schema gives as `ID` are strings in both references.
_INT32 = range(-(2**31), 2**31)
STRICT_OUTPUT: dict[str, Callable[[Any], bool]] = {
    "String": lambda value: isinstance(value, str),
    "ID": lambda value: isinstance(value, str),
    "Int": lambda value: isinstance(value, int) and not isinstance(value, bool) and value in _INT32,
    "Float": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "Boolean": lambda value: isinstance(value, bool),
}


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, in JSON's own words (null, boolean, number, string, array, object)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "value"


def strict_output(type_name: str, value: Any) -> None:
    """Raise UPSTREAM_BAD_RESPONSE if `value` is not what built-in scalar `type_name` takes from an upstream
    (a number past 32 bits for `Int` included); other types pass."""
    accepts = STRICT_OUTPUT.get(type_name)
    if accepts is not None and not accepts(value):
        what = json_type(value)
        if type_name == "Int" and what == "number":
            what = "number past 32 bits" if isinstance(value, int) else "fractional number"
        raise UpstreamBadResponse(f"The upstream sent a {what} for a field of type {type_name}.")
