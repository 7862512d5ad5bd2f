"""Per-request dataloaders: every nested lookup goes through here, batched and deduplicated.

A loader lives for one GraphQL request and one credential, so its memo never crosses callers.
What each loader costs upstream is stated on it; the schema's field descriptions repeat it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from gateway.credentials import Credential
from gateway.errors import NotFound
from gateway.upstream import v2 as v2api

Case = dict[str, Any]
PageKey = tuple[int, int, int]  # case_id, page, per_page


class Loaders:
    def __init__(self, v2: v2api.V2API, credential: Credential) -> None:
        self.v2 = v2
        self.credential = credential
        # v2 cases by id: one `case_ids` list call per 50 distinct ids (one single GET for one id).
        self.case: DataLoader[int, Case] = DataLoader(self._load_cases, max_batch_size=v2api.MAX_PER_PAGE)
        # A case's activities/records pages: one call per distinct (case, page, perPage).
        self.activities: DataLoader[PageKey, dict[str, Any]] = DataLoader(self._load_activities)
        self.records: DataLoader[PageKey, dict[str, Any]] = DataLoader(self._load_records)

    def prime_cases(self, cases: Sequence[Case]) -> None:
        """Cases already fetched by a list answer later lookups of the same ids for free."""
        for case in cases:
            case_id = case.get("case_id")
            if isinstance(case_id, int):
                self.case.prime(case_id, case)

    async def _load_cases(self, ids: list[int]) -> list[Case | BaseException]:
        if len(ids) == 1:
            try:
                return [await self.v2.get_case(self.credential, ids[0])]
            except NotFound as exc:
                return [exc]
        page = await self.v2.list_cases(
            self.credential, filters={"case_ids": ids}, per_page=v2api.MAX_PER_PAGE
        )
        by_id = {case.get("case_id"): case for case in page["cases"]}
        return [by_id.get(i) or NotFound(f"No v2 case {i}.", caseId=i) for i in ids]

    async def _each(
        self, fetch: Callable[..., Awaitable[dict[str, Any]]], keys: list[PageKey]
    ) -> list[dict[str, Any] | BaseException]:
        """Keys the upstream cannot batch: one call each, all at once; a failure stays with its key."""
        return await asyncio.gather(*(fetch(self.credential, *key) for key in keys), return_exceptions=True)

    async def _load_activities(self, keys: list[PageKey]) -> list[dict[str, Any] | BaseException]:
        return await self._each(self.v2.case_activities, keys)

    async def _load_records(self, keys: list[PageKey]) -> list[dict[str, Any] | BaseException]:
        return await self._each(self.v2.case_records, keys)
