"""The v2 cases API: the one place v2 URLs and query parameters are built.

`filters` travels as a compact JSON object in the query string (keys sorted, so equal filters make
equal URLs), as the reference shows: `?filters={"status":"OPEN"}`.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gateway.ops.errors import UpstreamBadResponse
from gateway.upstream.credentials import Caller
from gateway.upstream.decoding import Decode, json_decode
from gateway.upstream.http import UpstreamHTTP, path_segment

MAX_PER_PAGE = 50
DEFAULT_PER_PAGE = 20
ORDERS = (
    "RECENTLY_EDITED",
    "LEAST_RECENTLY_EDITED",
    "PRIORITY_ASC",
    "PRIORITY_DESC",
    "OPENED_ASC",
    "OPENED_DESC",
    "CREATED_ASC",
    "CREATED_DESC",
)


def list_params(
    *,
    filters: dict[str, Any] | None = None,
    order: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    team_id: int | None = None,
) -> dict[str, str | int | None]:
    return {
        "team_id": team_id,
        "filters": orjson.dumps(filters, option=orjson.OPT_SORT_KEYS).decode() if filters else None,
        "order": order,
        "page": page,
        "per_page": per_page,
    }


def _expect(data: Any, key: str, what: str) -> dict[str, Any]:
    """`data` when it is an object whose `key` is a list of objects (dicts, or the answers a plan decodes them
    straight into) and whose `meta`, if any, is an object, as the reference's list answers are."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get(key), list)
        or not all(isinstance(item, dict | msgspec.Struct) for item in data[key])
        or not isinstance(data.get("meta", {}), dict | msgspec.Struct)
    ):
        raise UpstreamBadResponse(f"The v2 upstream sent an unexpected {what} response.")
    return data


class V2API:
    name = "v2"

    def __init__(self, http: UpstreamHTTP, base_url: str) -> None:
        self.http = http
        self.base = base_url

    async def _get(
        self, path: str, params: dict[str, Any], caller: Caller, decode: Decode = json_decode
    ) -> Any:
        response = await self.http.get_json(self.name, self.base, path, params, caller, decode)
        return response.data

    async def list_cases(self, caller: Caller, decode: Decode = json_decode, **params: Any) -> dict[str, Any]:
        """GET /api/v2/cases -> {"cases": [...], "meta": {...}}; `decode` keeps what the caller reads."""
        data = await self._get("/api/v2/cases", list_params(**params), caller, decode)
        return _expect(data, "cases", "case list")

    async def get_case(self, caller: Caller, case_id: int, decode: Decode = json_decode) -> dict[str, Any]:
        """GET /api/v2/cases/{case_id} -> one case."""
        data = await self._get(f"/api/v2/cases/{path_segment(case_id)}", {}, caller, decode)
        if not isinstance(data, dict) or "case_id" not in data:
            raise UpstreamBadResponse("The v2 upstream sent an unexpected case response.")
        return data

    async def case_activities(self, caller: Caller, case_id: int, page: int, per_page: int) -> dict[str, Any]:
        """GET /api/v2/cases/{case_id}/activities -> {"activities": [...], "meta": {...}}."""
        path = f"/api/v2/cases/{path_segment(case_id)}/activities"
        data = await self._get(path, {"page": page, "per_page": per_page}, caller)
        return _expect(data, "activities", "activities")

    async def case_records(self, caller: Caller, case_id: int, page: int, per_page: int) -> dict[str, Any]:
        """GET /api/v2/cases/{case_id}/records -> {"records": [...], "meta": {...}}."""
        path = f"/api/v2/cases/{path_segment(case_id)}/records"
        data = await self._get(path, {"page": page, "per_page": per_page}, caller)
        return _expect(data, "records", "records")
