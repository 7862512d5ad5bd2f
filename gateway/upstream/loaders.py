"""Per-request dataloaders: every nested lookup goes through here, batched and deduplicated.

A `Loaders` lives for one GraphQL request and one credential, so its memo never crosses callers.
What each loader costs upstream is stated on it; the schema's field descriptions repeat it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any

import orjson
from strawberry.dataloader import DataLoader

from gateway.ops import tracing
from gateway.ops.errors import NotFound
from gateway.upstream import v2 as v2api
from gateway.upstream.credentials import Caller
from gateway.upstream.decoding import FULL, Decoders
from gateway.upstream.v1 import V1API

UpstreamCase = dict[str, Any]  # a v1 or v2 case as the upstream sent it (the schema's `Case` reads one)
PageKey = tuple[int, int, int]  # case_id, page, per_page
# v2 cases per call: ids per `case_ids` listing, and cases per page of a related (any-of) listing. The field
# declarations count the same (`gateway/schema/declarations.py`: V2_BY_IDS, RELATED).
IDS_PER_CALL = v2api.MAX_PER_PAGE
CASES_PER_LISTING = v2api.MAX_PER_PAGE
# Whose cases: ("assignee", user id) or ("tag", tag name), with the caller's filters (canonical JSON),
# order and how many cases per parent.
RelatedKey = tuple[str, str, str, str | None, int]

# How each kind of parent is matched: the any-of filter that serves many parents in one call, the
# all-of filter that narrows to one parent, and how to tell whose a case is.
RELATED = {
    "assignee": (
        "assignees",
        "and_assignees",
        lambda case: {a.get("user_id") for a in case.get("assignees") or []},
    ),
    "tag": ("or_tags", "and_tags", lambda case: {t.get("name") for t in case.get("tags") or []}),
}


def now_or_later(loader: DataLoader[Any, Any], key: Any) -> Any:
    """What `loader` has for `key` if this request already has it (primed, or loaded before): the value, or
    the exception to raise; else the awaitable of loading it. A resolver returning a known value directly
    spares the executor an awaitable per item."""
    future = loader.cache_map.get(key)
    if future is not None and future.done() and not future.cancelled():
        return future.exception() or future.result()
    return loader.load(key)


def all_now_or_later(loader: DataLoader[Any, Any], keys: Sequence[Any]) -> Any:
    """`now_or_later` for several keys: the list when all are known, else the awaitable of the list. A key
    that fails is an exception in its place, so it is an error on that item alone."""
    found = [now_or_later(loader, key) for key in keys]
    if not any(inspect.isawaitable(item) for item in found):
        return found

    async def known(item: Any) -> Any:
        return item

    return asyncio.gather(
        *(item if inspect.isawaitable(item) else known(item) for item in found), return_exceptions=True
    )


class Loaders:
    """One request's loaders, each made on first use (most queries need one or two of them)."""

    def __init__(
        self,
        v1: V1API,
        v2: v2api.V2API,
        caller: Caller,
        v1_concurrency: int = 8,
        decoders: Decoders = FULL,
    ) -> None:
        self.v1 = v1
        self.v2 = v2
        self.caller = caller
        self.v1_concurrency = v1_concurrency
        self.decoders = decoders  # the operation plan's: each upstream answer decoded for what it reads
        # v2 cases seen in this request's list answers, and the list calls still in flight.
        self._known: dict[int, UpstreamCase] = {}
        self._listings: set[asyncio.Future[Any]] = set()

    @cached_property
    def case(self) -> DataLoader[int, UpstreamCase]:
        """v2 cases by id: one `case_ids` list call per batch of distinct ids (a single GET for one id)."""
        return DataLoader(self._load_cases, max_batch_size=IDS_PER_CALL)

    @cached_property
    def legacy_case(self) -> DataLoader[int, UpstreamCase]:
        """v1 cases by id: the v1 API cannot batch, so one GET per distinct id, at most v1_concurrency at
        once."""
        return DataLoader(self._load_legacy_cases)

    @cached_property
    def v1_limit(self) -> asyncio.Semaphore:
        return asyncio.Semaphore(self.v1_concurrency)

    @cached_property
    def activities(self) -> DataLoader[PageKey, dict[str, Any]]:
        """A case's activities pages: one call per distinct (case, page, perPage), concurrently."""
        return DataLoader(self._load_activities)

    @cached_property
    def records(self) -> DataLoader[PageKey, dict[str, Any]]:
        """A case's records pages: one call per distinct (case, page, perPage), concurrently."""
        return DataLoader(self._load_records)

    @cached_property
    def related(self) -> DataLoader[RelatedKey, list[UpstreamCase]]:
        """The cases of users / tags: parents sharing filters are served by combined any-of calls."""
        return DataLoader(self._load_related)

    @cached_property
    def counts(self) -> DataLoader[str, int]:
        """How many v2 cases a filter (canonical JSON) selects, from the listing's own count: one call of one
        case per distinct filter, concurrently (a connection's `totalCount` when its window did not say)."""
        return DataLoader(self._load_counts)

    def release(self) -> None:
        """Drop what this request fetched, once its answer is built. The loaders and their load functions
        refer to each other (a cycle only the garbage collector would free): clearing them here frees the
        upstream data at once, by reference counting."""
        self._known.clear()
        self._listings.clear()
        for made in self.__dict__.values():  # the loaders this request made (cached_property keeps them here)
            if isinstance(made, DataLoader):
                made.cache_map.clear()
                made.load_fn = None  # type: ignore[assignment]

    async def listing(self, fetch: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        """Run a v2 case listing so that case lookups of the same request wait for it and take their cases
        from it: `case(id)` beside `cases` in one query costs nothing extra when the list has the id."""
        task = asyncio.ensure_future(fetch)
        self._listings.add(task)
        try:
            data = await task
        finally:
            self._listings.discard(task)
        self.prime_cases(data["cases"])
        return data

    async def cases_of(self, ids: Sequence[int | None]) -> None:
        """Load these v2 cases (None: no case) together, ahead of the fields that will ask for them; a case
        that fails stays an error for the field that asks for it."""
        wanted = list(dict.fromkeys(i for i in ids if i is not None))
        if wanted:
            await asyncio.gather(*(self.case.load(i) for i in wanted), return_exceptions=True)

    def prime_cases(self, cases: Sequence[UpstreamCase]) -> None:
        """Cases already fetched by a list answer later lookups of the same ids for free."""
        for case in cases:
            if case.__class__ is not dict:
                continue  # decoded straight into its answer: no other field of the query asks for it
            case_id = case.get("case_id")
            if isinstance(case_id, int):
                self._known[case_id] = case
                self.case.prime(case_id, case)

    def prime_legacy_cases(self, cases: Sequence[UpstreamCase]) -> None:
        for case in cases:
            case_id = case.get("id")
            if isinstance(case_id, int):
                self.legacy_case.prime(case_id, case)

    async def _load_cases(self, ids: list[int]) -> list[UpstreamCase | BaseException]:
        tracing.batch_event("case", len(ids))
        if self._listings:
            await asyncio.wait(list(self._listings))
        missing = [i for i in ids if i not in self._known]
        if len(missing) == 1:
            with contextlib.suppress(NotFound):
                self._known[missing[0]] = await self.v2.get_case(
                    self.caller, missing[0], self.decoders.v2_case
                )
        elif missing:
            page = await self.v2.list_cases(
                self.caller, self.decoders.v2_list, filters={"case_ids": missing}, per_page=IDS_PER_CALL
            )
            self.prime_cases(page["cases"])
        return [self._known.get(i) or NotFound(f"No v2 case {i}.", caseId=i) for i in ids]

    async def _load_legacy_cases(self, ids: list[int]) -> list[UpstreamCase | BaseException]:
        tracing.batch_event("legacy_case", len(ids))

        async def one(case_id: int) -> UpstreamCase:
            async with self.v1_limit:
                return await self.v1.get_case(self.caller, case_id, self.decoders.v1_case)

        return await asyncio.gather(*(one(i) for i in ids), return_exceptions=True)

    async def _each(
        self, fetch: Callable[..., Awaitable[dict[str, Any]]], keys: list[PageKey]
    ) -> list[dict[str, Any] | BaseException]:
        """Keys the upstream cannot batch: one call each, all at once; a failure stays with its key."""
        return await asyncio.gather(*(fetch(self.caller, *key) for key in keys), return_exceptions=True)

    async def _load_activities(self, keys: list[PageKey]) -> list[dict[str, Any] | BaseException]:
        tracing.batch_event("activities", len(keys))
        return await self._each(self.v2.case_activities, keys)

    async def _load_records(self, keys: list[PageKey]) -> list[dict[str, Any] | BaseException]:
        tracing.batch_event("records", len(keys))
        return await self._each(self.v2.case_records, keys)

    async def _load_counts(self, keys: list[str]) -> list[int | BaseException]:
        async def one(filters: str) -> int:
            data = await self.v2.list_cases(self.caller, filters=orjson.loads(filters), page=1, per_page=1)
            return int((data.get("meta") or {}).get("count") or 0)

        return await asyncio.gather(*(one(key) for key in keys), return_exceptions=True)

    async def _load_related(self, keys: list[RelatedKey]) -> list[list[UpstreamCase] | BaseException]:
        tracing.batch_event("related", len(keys))
        groups: dict[tuple[str, str, str | None, int], list[str]] = {}
        for kind, parent, filters, order, first in keys:
            groups.setdefault((kind, filters, order, first), []).append(parent)
        found: dict[RelatedKey, list[UpstreamCase] | BaseException] = {}

        async def serve(group: tuple[str, str, str | None, int], parents: list[str]) -> None:
            kind, filters, order, first = group
            try:
                by_parent = await self._related_group(kind, parents, orjson.loads(filters), order, first)
            except Exception as exc:
                by_parent = dict.fromkeys(parents, exc)
            for parent in parents:
                found[(kind, parent, filters, order, first)] = by_parent[parent]

        await asyncio.gather(*(serve(group, parents) for group, parents in groups.items()))
        return [found[key] for key in keys]

    async def _related_group(
        self, kind: str, parents: list[str], filters: dict[str, Any], order: str | None, first: int
    ) -> dict[str, Any]:
        """The first `first` cases of each parent. Several parents: combined any-of listings of the parents
        still short of cases; while that set stays the same the listing pages on, when it shrinks it restarts
        on the smaller set, so a parent served once is never asked for again. Parents still short after a
        bounded number of calls (or when the caller's own filter uses the any-of key) get a call of their own."""
        any_key, all_key, owners_of = RELATED[kind]
        result: dict[str, list[UpstreamCase]] = {parent: [] for parent in parents}
        short = list(parents) if any_key not in filters else []
        asked: list[str] = []
        page, calls = 1, 0
        max_calls = math.ceil(len(parents) * first / CASES_PER_LISTING) + 1
        while len(short) > 1 and calls < max_calls:
            if short != asked:
                asked, page = short, 1
                for parent in asked:
                    result[parent] = []
            data = await self.v2.list_cases(
                self.caller,
                self.decoders.v2_list,
                filters={**filters, any_key: asked},
                order=order,
                page=page,
                per_page=CASES_PER_LISTING,
            )
            calls += 1
            self.prime_cases(data["cases"])
            for case in data["cases"]:
                for owner in owners_of(case) & set(asked):
                    if len(result[owner]) < first:
                        result[owner].append(case)
            exhausted = page >= int((data.get("meta") or {}).get("pages") or 0)
            short = [] if exhausted else [p for p in asked if len(result[p]) < first]
            page += 1

        async def alone(parent: str) -> None:
            narrowed = {**filters, all_key: [*filters.get(all_key, []), parent]}
            data = await self.v2.list_cases(
                self.caller, self.decoders.v2_list, filters=narrowed, order=order, page=1, per_page=first
            )
            self.prime_cases(data["cases"])
            result[parent] = data["cases"]

        await asyncio.gather(*(alone(parent) for parent in short))
        return result
