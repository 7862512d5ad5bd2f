"""The demo v2 cases API: every documented filter, order and page parameter, strictly validated.

Semantics where the reference leaves room: SLA status "warning" is an SLA not exceeded at 75% or more
of its time; relative dates count back from DEMO_NOW (a month is 30 days, a year 365); ties in every
order break by `case_id` ascending; cases without the ordered value (null) come last.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson

from gateway.demo.data import (
    DEMO_NOW,
    EMBEDDED,
    PRIORITIES,
    CaseData,
    DemoData,
    TokenGrant,
    group_records,
    parse_moment,
)

MAX_PER_PAGE = 50
DEFAULT_PER_PAGE = 20
ORDERS = {
    "RECENTLY_EDITED": ("updated_at", True),
    "LEAST_RECENTLY_EDITED": ("updated_at", False),
    "PRIORITY_ASC": ("priority", False),
    "PRIORITY_DESC": ("priority", True),
    "OPENED_ASC": ("opened_at", False),
    "OPENED_DESC": ("opened_at", True),
    "CREATED_ASC": ("created_at", False),
    "CREATED_DESC": ("created_at", True),
}
PRIORITY_RANK = {name: len(PRIORITIES) - n for n, name in enumerate(PRIORITIES)}  # CRITICAL highest
LIST_PARAMS = {"team_id", "filters", "order", "page", "per_page"}
PAGE_PARAMS = {"page", "per_page"}
RELATIVE = re.compile(r"(today|yesterday|([1-9]\d{0,3}) (day|week|month|year)s?)")
TIME_RANGE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
SLA_WARNING_PERCENT = 75

Predicate = Callable[[CaseData], bool]


class DemoError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> DemoError:
    return DemoError(400, message)


def single_params(params: dict[str, list[str]], allowed: set[str]) -> dict[str, str]:
    """The query parameters, each given once, all known; else 400."""
    out = {}
    for name, values in params.items():
        if name not in allowed:
            raise bad(f"Unknown parameter: {name}")
        if len(values) != 1:
            raise bad(f"Parameter {name} given more than once")
        out[name] = values[0]
    return out


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and "١٠" (which it reads)."""
    return text.isascii() and text.isdigit()


def int_param(params: dict[str, str], name: str, default: int, low: int = 1, high: int | None = None) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not is_number(text) or not (low <= int(text) and (high is None or int(text) <= high)):
        limit = f"between {low} and {high}" if high else f"{low} or more"
        raise bad(f"{name} must be an integer {limit}, got {text!r}")
    return int(text)


def page_meta(url: str, query: dict[str, Any], page: int, per_page: int, count: int) -> dict[str, Any]:
    pages = -(-count // per_page)

    def link(number: int) -> str:
        return f"{url}?{urlencode({**query, 'per_page': per_page, 'page': number})}"

    return {
        "current_page": link(page),
        "previous_page": link(page - 1) if page > 1 else None,
        "next_page": link(page + 1) if page < pages else None,
        "next_page_number": page + 1 if page < pages else None,
        "per_page": per_page,
        "pages": pages,
        "count": count,
    }


# --- filter values -------------------------------------------------------------------------------------


def _items(key: str, value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise bad(f"filters.{key} must not be empty")
    return items


def _strings(key: str, value: Any) -> list[str]:
    out = []
    for item in _items(key, value):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise bad(f"filters.{key} must be a string or an array of strings")
        out.append(str(item))
    return out


def _choices(key: str, value: Any, allowed: list[str]) -> set[str]:
    items = _strings(key, value)
    for item in items:
        if item not in allowed:
            raise bad(f"filters.{key}: {item!r} is not one of {', '.join(allowed)}")
    return set(items)


def _ints(key: str, value: Any) -> set[int]:
    out = set()
    for item in _items(key, value):
        if isinstance(item, str) and is_number(item):
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise bad(f"filters.{key} must be a positive integer or an array of them")
        out.add(item)
    return out


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad(f"filters.{key} must be true or false")
    return value


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad(f"filters.{key} must be a non-empty string")
    return value.lower()


def _pairs(key: str, value: Any) -> list[tuple[str, str]]:
    out = []
    for item in _items(key, value):
        if not isinstance(item, dict) or set(item) != {"key", "value"} or not isinstance(item["key"], str):
            raise bad(f"filters.{key} must be an object {{key, value}} or an array of them")
        out.append((item["key"], str(item["value"])))
    return out


def _moment(key: str, value: Any, end_of_day: bool) -> datetime:
    if not isinstance(value, str):
        raise bad(f"filters.{key} must be an ISO 8601 timestamp")
    try:
        return parse_moment(value, end_of_day)
    except ValueError:
        raise bad(f"filters.{key} must be an ISO 8601 timestamp, got {value!r}") from None


EARLIEST = datetime.min.replace(tzinfo=UTC)


def _relative(key: str, value: Any) -> tuple[datetime, datetime]:
    match = RELATIVE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise bad(f'filters.{key} must be "today", "yesterday" or "X days|weeks|months|years", got {value!r}')
    today = DEMO_NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "today":
        return today, today + timedelta(days=1)
    if value == "yesterday":
        return today - timedelta(days=1), today
    # a span reaching before year 1 (e.g. "2025 years") starts at the earliest date there is
    days = min(int(match[2]) * UNIT_DAYS[match[3]], (DEMO_NOW - EARLIEST).days)
    return DEMO_NOW - timedelta(days=days), DEMO_NOW + timedelta(seconds=1)


def _when(case: dict[str, Any], name: str) -> datetime | None:
    value = case.get(name)
    return parse_moment(value) if value else None


def _sla_statuses(case: dict[str, Any]) -> set[str]:
    out = set()
    for sla in case["slas"] or []:
        if sla["exceeded"]:
            out.add("exceeded")
        elif (sla["percent_elapsed"] or 0) >= SLA_WARNING_PERCENT:
            out.add("warning")
    return out


def _matches_person(person: dict[str, Any] | None, wanted: str) -> bool:
    if person is None:
        return False
    email = person.get("email")
    return person["user_id"] == wanted or bool(email and email.lower() == wanted.lower())


# --- filters -------------------------------------------------------------------------------------------


def _filter(key: str, value: Any, grant: TokenGrant) -> Predicate | None:
    """The predicate for one filter, or None when it selects everything (e.g. `unassigned: false`)."""
    if key in ("assignees", "assignee_emails"):
        wanted = _strings(key, value)

        def any_assignee(d: CaseData) -> bool:
            people = d.case["assignees"]
            return any(
                (w == "unassigned" and not people) or any(_matches_person(p, w) for p in people)
                for w in wanted
            )

        return any_assignee
    if key == "and_assignees":
        ids = set(_strings(key, value))
        return lambda d: ids <= {p["user_id"] for p in d.case["assignees"]}
    if key == "exclude_assignees":
        ids = set(_strings(key, value))
        return lambda d: not ids & {p["user_id"] for p in d.case["assignees"]}
    if key in ("assigned_to_me", "unassigned", "subscribed", "my_open_tasks"):
        if not _bool(key, value):
            return None
        me = grant.user_id
        return {
            "assigned_to_me": lambda d: any(p["user_id"] == me for p in d.case["assignees"]),
            "unassigned": lambda d: not d.case["assignees"],
            "subscribed": lambda d: me in d.subscribers,
            "my_open_tasks": lambda d: any(
                not t["completed"] and any(a["id"] == me for a in t["assignees"]) for t in d.case["tasks"]
            ),
        }[key]
    if key in ("authors", "author_emails"):
        wanted = _strings(key, value)

        def any_author(d: CaseData) -> bool:
            author = d.case["author"]
            return any(
                (w == "tines" and author is not None and author["is_service_account"])
                or _matches_person(author, w)
                for w in wanted
            )

        return any_author
    if key == "exclude_authors":
        ids = set(_strings(key, value))
        return lambda d: d.case["author"] is None or d.case["author"]["user_id"] not in ids
    if key in ("tags", "and_tags"):
        names = set(_strings(key, value))
        return lambda d: names <= {t["name"] for t in d.case["tags"]}
    if key == "or_tags":
        names = set(_strings(key, value))
        return lambda d: bool(names & {t["name"] for t in d.case["tags"]})
    if key == "exclude_tags":
        names = set(_strings(key, value))
        return lambda d: not names & {t["name"] for t in d.case["tags"]}
    if key == "priority":
        allowed = _choices(key, value, PRIORITIES)
        return lambda d: d.case["priority"] in allowed
    if key == "exclude_priorities":
        refused = _choices(key, value, PRIORITIES)
        return lambda d: d.case["priority"] not in refused
    if key == "status":
        if value not in ("OPEN", "CLOSED"):
            raise bad(f"filters.status must be OPEN or CLOSED, got {value!r}")
        return lambda d: d.case["status"] == value
    if key in ("sub_status_names", "exclude_sub_status_names"):
        names = set(_strings(key, value))
        keep = key == "sub_status_names"
        return lambda d: ((d.case["sub_status"] or {}).get("name") in names) is keep
    if key in ("metadata", "and_metadata", "or_metadata"):
        pairs = _pairs(key, value)
        combine = any if key == "or_metadata" else all

        def metadata(d: CaseData) -> bool:
            meta = d.case["metadata"] or {}
            return combine(k in meta and str(meta[k]) == v for k, v in pairs)

        return metadata
    if key in ("fields", "and_fields", "or_fields"):
        pairs = _pairs(key, value)
        combine = any if key == "or_fields" else all

        def fields(d: CaseData) -> bool:
            have = {(f["case_input"]["key"], f["value"]) for f in d.case["fields"] if f["case_input"]}
            return combine(pair in have for pair in pairs)

        return fields
    for prefix, column in (
        ("", "created_at"),
        ("resolved_at_", "resolved_at"),
        ("updated_at_", "updated_at"),
    ):
        if key == f"{prefix}start_date":
            start = _moment(key, value, end_of_day=False)
            return lambda d, c=column: (w := _when(d.case, c)) is not None and w >= start
        if key == f"{prefix}end_date":
            end = _moment(key, value, end_of_day=True)
            return lambda d, c=column: (w := _when(d.case, c)) is not None and w <= end
        if key == f"{prefix}relative_date":
            low, high = _relative(key, value)
            return lambda d, c=column: (w := _when(d.case, c)) is not None and low <= w < high
    if key == "time_range":
        match = TIME_RANGE.fullmatch(value) if isinstance(value, str) else None
        if not match:
            raise bad(f'filters.time_range must be "HH:MM-HH:MM" (24-hour), got {value!r}')
        start, end = int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])

        def in_range(d: CaseData) -> bool:
            created = _when(d.case, "created_at")
            assert created is not None
            minute = created.hour * 60 + created.minute
            return start <= minute <= end if start <= end else (minute >= start or minute <= end)

        return in_range
    if key in ("sla_status", "sla"):
        wanted = _choices(key, value, ["warning", "exceeded"])
        return lambda d: bool(wanted & _sla_statuses(d.case))
    if key == "and_sla_status":
        wanted = _choices(key, value, ["warning", "exceeded"])
        return lambda d: wanted <= _sla_statuses(d.case)
    if key == "exclude_sla_status":
        wanted = _choices(key, value, ["warning", "exceeded"])
        return lambda d: not wanted & _sla_statuses(d.case)
    if key in ("sla_type", "and_sla_type", "exclude_sla_type"):
        wanted = _choices(key, value, ["resolution", "response"])
        test = {
            "sla_type": lambda have: bool(wanted & have),
            "and_sla_type": lambda have: wanted <= have,
            "exclude_sla_type": lambda have: not wanted & have,
        }[key]
        return lambda d: test({s["sla_type"] for s in d.case["slas"] or []})
    if key == "search":
        text = _text(key, value)
        return lambda d: (
            text in (d.case["name"] or "").lower()
            or text in (d.case["description"] or "").lower()
            or text == str(d.case["case_id"])
        )
    if key == "name":
        text = _text(key, value)
        return lambda d: text in (d.case["name"] or "").lower()
    if key == "comment":
        text = _text(key, value)
        return lambda d: any(
            a["activity_type"] == "COMMENTED" and text in (a["value"] or "").lower() for a in d.activities
        )
    if key == "note":
        text = _text(key, value)
        return lambda d: any(text in note.lower() for note in d.notes)
    if key == "case_ids":
        ids = _ints(key, value)
        return lambda d: d.case["case_id"] in ids
    if key == "child_team_ids":
        teams = _ints(key, value)
        return lambda d: d.case["team"]["id"] in teams
    if key == "records":
        values = set(_strings(key, value))
        return lambda d: any(
            field["value"] in values for _, _, result in d.record_results for field in result["results"]
        )
    raise bad(f"Unknown filter: {key}")


def parse_filters(text: str | None, grant: TokenGrant) -> list[Predicate]:
    if text is None:
        return []
    try:
        filters = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise bad("filters must be a JSON object") from None
    if not isinstance(filters, dict):
        raise bad("filters must be a JSON object")
    return [p for key, value in filters.items() if (p := _filter(key, value, grant)) is not None]


def _sorted(cases: list[CaseData], order: str) -> list[CaseData]:
    column, descending = ORDERS[order]
    by_id = sorted(cases, key=lambda d: d.case["case_id"])
    present = [d for d in by_id if d.case[column] is not None]
    absent = [d for d in by_id if d.case[column] is None]

    def value(d: CaseData) -> Any:
        v = d.case[column]
        return PRIORITY_RANK[v] if column == "priority" else v

    return sorted(present, key=value, reverse=descending) + absent  # sorted() is stable, reversed too


class V2Demo:
    """The v2 endpoints over the demo data."""

    def __init__(self, data: DemoData) -> None:
        self.data = data
        self._responses: dict[tuple[str, int], dict[str, Any]] = {}

    def _visible(self, grant: TokenGrant, case_id: int) -> CaseData:
        found = self.data.cases.get(case_id)
        if found is None or found.case["team"]["id"] not in grant.team_ids:
            raise DemoError(404, f"Case {case_id} not found")
        return found

    def response(self, found: CaseData, base: str) -> dict[str, Any]:
        """A case as the API answers it: absolute `url`, and the meta of its embedded pages."""
        key = (base, found.case["case_id"])
        if key not in self._responses:
            case_id = found.case["case_id"]
            self._responses[key] = {
                **found.case,
                "url": base + found.case["url"],
                "activities_meta": page_meta(
                    f"{base}/api/v2/cases/{case_id}/activities", {}, 1, EMBEDDED, len(found.activities)
                ),
                "records_meta": page_meta(
                    f"{base}/api/v2/cases/{case_id}/records", {}, 1, EMBEDDED, len(found.record_results)
                ),
            }
        return self._responses[key]

    def list_cases(self, params: dict[str, list[str]], grant: TokenGrant, base: str) -> dict[str, Any]:
        given = single_params(params, LIST_PARAMS)
        page = int_param(given, "page", 1)
        per_page = int_param(given, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        order = given.get("order", "CREATED_DESC")
        if order not in ORDERS:
            raise bad(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        teams = grant.team_ids
        if "team_id" in given:
            teams = teams & {int_param(given, "team_id", 0)}
        predicates = parse_filters(given.get("filters"), grant)
        selected = [
            d
            for d in self.data.cases.values()
            if d.case["team"]["id"] in teams and all(p(d) for p in predicates)
        ]
        ordered = _sorted(selected, order)
        window = ordered[(page - 1) * per_page : page * per_page]
        query = {k: v for k, v in given.items() if k not in PAGE_PARAMS}
        return {
            "cases": [self.response(d, base) for d in window],
            "meta": page_meta(f"{base}/api/v2/cases", query, page, per_page, len(selected)),
        }

    def get_case(
        self, case_id: int, params: dict[str, list[str]], grant: TokenGrant, base: str
    ) -> dict[str, Any]:
        single_params(params, set())
        return self.response(self._visible(grant, case_id), base)

    def _page(self, params: dict[str, list[str]]) -> tuple[int, int]:
        given = single_params(params, PAGE_PARAMS)
        return int_param(given, "page", 1), int_param(given, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)

    def activities(
        self, case_id: int, params: dict[str, list[str]], grant: TokenGrant, base: str
    ) -> dict[str, Any]:
        page, per_page = self._page(params)
        found = self._visible(grant, case_id)
        return {
            "activities": found.activities[(page - 1) * per_page : page * per_page],
            "meta": page_meta(
                f"{base}/api/v2/cases/{case_id}/activities", {}, page, per_page, len(found.activities)
            ),
        }

    def records(
        self, case_id: int, params: dict[str, list[str]], grant: TokenGrant, base: str
    ) -> dict[str, Any]:
        page, per_page = self._page(params)
        found = self._visible(grant, case_id)
        return {
            "records": group_records(found.record_results[(page - 1) * per_page : page * per_page]),
            "meta": page_meta(
                f"{base}/api/v2/cases/{case_id}/records", {}, page, per_page, len(found.record_results)
            ),
        }
