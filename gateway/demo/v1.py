"""The demo v1 investigations API: every documented request parameter, header pagination, strict 400s.

`client`, `case_status`, `primary_*` and the other id parameters match the nested object's `id`;
`created_from`/`created_to` (aliases `From`/`To`) act on `created_on`, `created_*_system` on
`created_at`. Cases come in `id` order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from gateway.demo.data import DemoData, parse_moment
from gateway.demo.v2 import DemoError, bad, int_param, single_params

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25
ID_PARAMS = {  # parameter -> the case key whose `id` it matches (None: the case's own id)
    "id": None,
    "client": "client",
    "location": "location",
    "case_region": "case_region",
    "case_status": "case_status",
    "primary_contact": "primary_contact",
    "primary_investigator": "primary_investigator",
    "primary_manager": "primary_manager",
    "primary_salesperson": "primary_salesperson",
    "primary_subject": "primary_subject",
}
DATE_PARAMS = {  # parameter -> (case key, lower bound?)
    "created_from": ("created_on", True),
    "created_to": ("created_on", False),
    "due_from": ("due_on", True),
    "due_to": ("due_on", False),
}
TIMESTAMP_PARAMS = {
    "created_from_system": ("created_at", True),
    "created_to_system": ("created_at", False),
    "updated_from": ("updated_at", True),
    "updated_to": ("updated_at", False),
}
TEXT_PARAMS = {"reference_value_1", "reference_value_2", "reference_value_3", "case_number"}
NUMBER_PARAMS = {"series_number", "series_instance"}
ALIASES = {"From": "created_from", "To": "created_to"}
PARAMS = {
    *ID_PARAMS,
    *DATE_PARAMS,
    *TIMESTAMP_PARAMS,
    *TEXT_PARAMS,
    *NUMBER_PARAMS,
    *ALIASES,
    "is_request",
    "page",
    "per_page",
}

Predicate = Callable[[dict[str, Any]], bool]


def _bound(column: str, lower: bool, limit: Any, parse: Callable[[str], Any]) -> Predicate:
    def test(case: dict[str, Any]) -> bool:
        value = case[column]
        if value is None:
            return False
        moment = parse(value)
        return moment >= limit if lower else moment <= limit

    return test


def _predicate(name: str, text: str) -> Predicate:
    if name in ID_PARAMS:
        number = int_param({name: text}, name, 0)
        key = ID_PARAMS[name]
        return lambda c: (c["id"] if key is None else (c[key] or {}).get("id")) == number
    if name in NUMBER_PARAMS:
        number = int_param({name: text}, name, 0)
        return lambda c: c[name] == number
    if name in DATE_PARAMS:
        try:
            limit = date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            limit = None
        if limit is None:
            raise bad(f"{name} must be a date (YYYY-MM-DD), got {text!r}")
        column, lower = DATE_PARAMS[name]
        return _bound(column, lower, limit, date.fromisoformat)
    if name in TIMESTAMP_PARAMS:
        try:
            moment = parse_moment(text)
        except ValueError:
            raise bad(f"{name} must be an ISO 8601 timestamp, got {text!r}") from None
        column, lower = TIMESTAMP_PARAMS[name]
        return _bound(column, lower, moment, parse_moment)
    if name in TEXT_PARAMS:
        return lambda c: c[name] == text
    if name == "is_request":
        if text not in ("true", "false"):
            raise bad(f"is_request must be true or false, got {text!r}")
        wanted = text == "true"
        return lambda c: c["is_request"] is wanted
    raise bad(f"Unknown parameter: {name}")


class V1Demo:
    """The v1 endpoints over the demo data (every valid token sees every v1 case)."""

    def __init__(self, data: DemoData) -> None:
        self.data = data

    def list_cases(self, params: dict[str, list[str]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        given = single_params(params, PARAMS)
        for alias, name in ALIASES.items():
            if alias in given and name in given:
                raise bad(f"{alias} is an alias of {name}: give one of them")
        page = int_param(given, "page", 1)
        per_page = int_param(given, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        predicates = [
            _predicate(ALIASES.get(name, name), text)
            for name, text in given.items()
            if name not in ("page", "per_page")
        ]
        selected = [c for c in self.data.legacy.values() if all(p(c) for p in predicates)]
        headers = {
            "X-Total-Count": str(len(selected)),
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total-Pages": str(-(-len(selected) // per_page)),
        }
        return selected[(page - 1) * per_page : page * per_page], headers

    def get_case(self, case_id: int, params: dict[str, list[str]]) -> dict[str, Any]:
        single_params(params, set())
        found = self.data.legacy.get(case_id)
        if found is None:
            raise DemoError(404, f"Case {case_id} not found")
        return found
