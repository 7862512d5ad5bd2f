"""The v1 investigations API: the one place v1 URLs and query parameters are built.

`GET /api/v1/cases` answers a bare array; its pagination travels in the X-Total-Count, X-Page,
X-Per-Page and X-Total-Pages headers. The v1 API cannot fetch several cases by id in one call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.ops.errors import UpstreamBadResponse
from gateway.upstream.credentials import Caller
from gateway.upstream.decoding import Decode, json_decode
from gateway.upstream.http import UpstreamHTTP, path_segment

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25


def _header_int(headers: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(headers.get(name, default))
    except ValueError:
        return default


class V1API:
    name = "v1"

    def __init__(self, http: UpstreamHTTP, base_url: str) -> None:
        self.http = http
        self.base = base_url

    async def list_cases(
        self,
        caller: Caller,
        params: Mapping[str, Any],
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
        decode: Decode = json_decode,
    ) -> dict[str, Any]:
        """GET /api/v1/cases -> {"cases": [...], "page": n, "per_page": n, "pages": n, "count": n}."""
        query = {**params, "page": page, "per_page": per_page}
        response = await self.http.get_json(self.name, self.base, "/api/v1/cases", query, caller, decode)
        if not isinstance(response.data, list) or not all(
            isinstance(case, dict | msgspec.Struct) for case in response.data
        ):
            raise UpstreamBadResponse("The v1 upstream sent an unexpected case list response.")
        headers = response.headers
        count = _header_int(headers, "X-Total-Count", len(response.data))
        size = _header_int(headers, "X-Per-Page", per_page)
        return {
            "cases": response.data,
            "page": _header_int(headers, "X-Page", page),
            "per_page": size,
            "count": count,
            "pages": _header_int(headers, "X-Total-Pages", -(-count // size) if size else 0),
        }

    async def get_case(self, caller: Caller, case_id: int, decode: Decode = json_decode) -> dict[str, Any]:
        """GET /api/v1/cases/{case_id} -> one case."""
        path = f"/api/v1/cases/{path_segment(case_id)}"
        response = await self.http.get_json(self.name, self.base, path, {}, caller, decode)
        if not isinstance(response.data, dict) or "id" not in response.data:
            raise UpstreamBadResponse("The v1 upstream sent an unexpected case response.")
        return response.data
