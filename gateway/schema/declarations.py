"""What each fetching field costs upstream, declared once.

Every schema field whose resolver can call an upstream carries a `Cost` in its metadata (`fetching`): the
query limits (`gateway/planning/plan.py`) count calls with it, the field's description states it (`Cost.sentence`),
and the loaders size their batches from it. Fields derived from data already fetched carry `derived` and
say which upstream keys they read; `tests/test_cost.py` fails on a resolver field that declares neither.

A cost is counted for `parents` objects the field is asked on, `size` items per parent (its `perPage` or
`first`, else 1), and `list_size` (COST_LIST_SIZE) for lists whose length only the upstream knows:

    per="parent"  one call per parent object
    per="batch"   one call per `batch` objects fetched (the parents' ids together, deduplicated)
    per="group"   one combined listing per `batch` cases for all parents sharing the arguments, one more
                  page at worst, and at worst one call per parent still short
    per="window"  a cursor connection's window (its `first`/`last`, else `window`): at most two pages and a
                  count page per parent; with `grouped_first`, a first window (no cursor, no `last`) is served
                  as per="group", plus a count call per parent
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import strawberry

from gateway.ops.errors import upstream_object
from gateway.upstream import v2 as v2api

COST = "casegraph-cost"  # metadata keys on strawberry fields
READS = "casegraph-reads"  # the upstream keys of the parent a resolver reads (each decoded whole)
RESULT_READS = "casegraph-result-reads"  # upstream keys the gateway itself reads on the objects returned
RESULT = "casegraph-result"  # which upstream objects a resolver returns (`gateway/planning/reads.py`)
# A derived field's value as a pure function of (parent, settings): `parent` maps (at least) the keys the field
# `reads` to their upstream values, absent keys absent. The resolver calls it, and the compiled code calls it in
# place: on a decoded answer (`gateway/planning/answers.py`) or on a dict (`gateway/planning/execution.py`). It returns the value
# or raises (the field's error; the compiled code then leaves the object to graphql-core, which reports it).
COMPUTE = "casegraph-compute"
# A fetching field's resolver as a function of (parent, context), for fields without arguments: it returns the
# value, an exception (the field's error) or an awaitable (not known yet); the compiled projections call it in
# place and give the object to graphql-core for the last two.
RESOLVE_NOW = "casegraph-resolve-now"


@dataclass(frozen=True)
class Cost:
    per: Literal["parent", "batch", "group", "window"]
    api: str  # "v1" or "v2"
    batch: int = 1  # objects per call (per="batch"/"group")
    lists_parents: bool = False  # per="parent": one call per case (in the sentence); per="batch": over a list
    # each parent holds (linked ids), so COST_LIST_SIZE objects per parent
    note: str = ""  # what the description adds after the count (sharing, free cases), with its punctuation
    window: int = 0  # per="window": the window without `first`/`last`
    grouped_first: bool = (
        False  # per="window": a first window is batched across parents (users', tags' cases)
    )
    says: str = ""  # the cost in the description's own words, where the count above needs them

    def calls(
        self, parents: int, size: int, list_size: int, arguments: frozenset[str] = frozenset()
    ) -> tuple[int, int, int]:
        """For `parents` parents asking `size` items each (`arguments`: the argument names given): (upstream
        calls at most, objects returned, items per returned page)."""
        if self.per == "window":
            if self.grouped_first and not arguments & {"after", "before", "last"} and size < self.batch:
                return 2 * parents + math.ceil(parents * (size + 1) / self.batch) + 1, parents, size
            return 3 * parents, parents, size
        if self.per == "parent":
            return parents, parents, size
        if self.per == "batch":
            fetched = parents * (list_size if self.lists_parents else 1)
            return math.ceil(fetched / self.batch), fetched, 1
        fetched = parents * size
        return parents + math.ceil(fetched / self.batch) + 1, fetched, 1

    def sentence(self) -> str:
        if self.says:
            return f"Upstream cost: {self.says}."
        if self.per == "window":
            return (
                f"Upstream cost: one {self.api} call when the window fits one upstream page (the gateway picks the "
                "page size so that it does whenever one can), else two; `last` without `before` first reads page 1 "
                f"of {self.batch} for the count (one call more, unless that page holds the window){self.note}."
            )
        if self.per == "parent":
            counted = f"one {self.api} call" + (" per case" if self.lists_parents else "")
        elif self.per == "batch":
            counted = f"one {self.api} call per {self.batch} distinct ids"
        else:
            counted = f"combined {self.api} listings, {self.batch} cases per call"
        return f"Upstream cost: {counted}{self.note}."


ROOT_V2 = Cost(
    "parent",
    "v2",
    note="; the cases it returns answer `case(id)` and links to them in the same query for free",
)
ROOT_V1 = Cost("parent", "v1")
CASE_BY_ID = Cost(
    "parent",
    "v2",
    note=", shared with the other v2 case lookups of the query (free when a list in the query already has it)",
)
LEGACY_CASE_BY_ID = Cost(
    "parent", "v1", note=" (shared with the other lookups of the same v1 case in the query)"
)
NODE = Cost("parent", "v2 or v1", note=", as `case` or `legacyCase`")
# A case's own pages: the v2 API serves one case's activities or records per call.
CASE_PAGE = Cost(
    "parent",
    "v2",
    lists_parents=True,
    note=" and page, run concurrently (none for page 1 at the embedded page size)",
)
# v1 cases by id: the v1 API cannot batch, so one call per distinct case, at most V1_CONCURRENCY at once.
LEGACY_LINK = Cost(
    "parent",
    "v1",
    lists_parents=True,
    note=" (per distinct v1 case in the answer: the v1 API cannot batch), run concurrently up to "
    "V1_CONCURRENCY at once",
)
# v2 cases by id, every parent's ids together: the `case_ids` filter takes up to a page of ids.
V2_BY_IDS = Cost(
    "batch",
    "v2",
    batch=v2api.MAX_PER_PAGE,
    note="; the ids of every case in the answer are fetched together (ids already fetched are free)",
)
V2_LINKED_BY_IDS = Cost(
    "batch",
    "v2",
    batch=v2api.MAX_PER_PAGE,
    lists_parents=True,
    note="; the linked ids of every case in the answer are fetched together (ids already fetched are free)",
)
RELATED = Cost(
    "group",
    "v2",
    batch=v2api.MAX_PER_PAGE,
    note="; every parent in the answer asking with the same arguments is served together by one any-of listing "
    "(further pages only while a parent still lacks cases, bounded; then a call per parent still short); the "
    "same parent twice costs nothing more",
)


# Cursor connections (gateway/schema/connection.py): windows mapped to the fewest upstream pages.
CASES_WINDOW = Cost(
    "window",
    "v2",
    batch=v2api.MAX_PER_PAGE,
    window=20,
    note="; the cases it returns answer `case(id)` and `node(id)` in the same query for free",
)
LEGACY_CASES_WINDOW = Cost("window", "v1", batch=100, window=25)
ACTIVITIES_WINDOW = Cost(
    "window",
    "v2",
    batch=v2api.MAX_PER_PAGE,
    window=20,
    says="none for a window within the embedded first page (`activities`); else one v2 call per case when the "
    "window fits one upstream page, two otherwise",
)
RECORDS_WINDOW = Cost(
    "window",
    "v2",
    batch=v2api.MAX_PER_PAGE,
    window=20,
    says="none when the embedded `records` hold them all; else one v2 call per case and 50-record page the "
    "window touches (at most two)",
)
RELATED_WINDOW = Cost(
    "window",
    "v2",
    batch=v2api.MAX_PER_PAGE,
    window=20,
    grouped_first=True,
    says="the first window (no cursor, `first` up to 49) is served as `cases` is, for one case more; "
    "`totalCount` then costs one call per parent with more cases than the window. A window after or before a "
    "cursor (or `last`, or `first: 50`) is that parent's own listing: one call when the window fits one "
    "upstream page, else two, and one more for the count when `last` comes without `before`",
)


def fetching(
    cost: Cost,
    description: str,
    *,
    reads: tuple[str, ...] = (),
    returns: str,
    result_reads: tuple[str, ...] = (),
    compute: Callable[[Any, Any], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """A field that calls an upstream: its cost in metadata and in its description. `reads` are the keys of the
    parent its resolver reads, `returns` the kind of upstream object it gives (`gateway/planning/plan.py`),
    `result_reads` keys the gateway reads on those objects whatever the client selects, `compute` the resolver
    as a function of (parent, context) when it has no arguments (see RESOLVE_NOW)."""
    metadata = {COST: cost, READS: reads, RESULT: returns, RESULT_READS: result_reads}
    if compute is not None:
        metadata[RESOLVE_NOW] = compute
    return strawberry.field(description=f"{description} {cost.sentence()}", metadata=metadata, **kwargs)


def derived(
    description: str,
    *,
    reads: tuple[str, ...],
    returns: str | None = None,
    compute: Callable[[Any, Any], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """A field computed from the parent's upstream keys `reads`, with no upstream call. `returns` names the
    upstream objects it gives (when they are the parent's own data, e.g. the embedded first page); `compute` is
    the resolver as a pure function of (parent, settings) (see COMPUTE)."""
    metadata: dict[str, Any] = {READS: reads}
    if returns is not None:
        metadata[RESULT] = returns
    if compute is not None:
        metadata[COMPUTE] = compute
    return strawberry.field(description=description, metadata=metadata, **kwargs)


class OfKey:
    """A derived field's compute that is a function of one upstream key's value (the value itself when no
    `function` is given: `Assignee.id` is `user_id`). The compiled path passes it the value straight from the
    decoded object, at about a copy's cost."""

    def __init__(self, key: str, function: Callable[[Any], Any] | None = None) -> None:
        self.key, self.function = key, function

    def __call__(self, parent: Any, settings: Any) -> Any:
        value = upstream_object(parent).get(self.key)
        return value if self.function is None else self.function(value)


STRAWBERRY_FIELD = "strawberry-definition"  # where strawberry keeps its field on a graphql-core field


def declared(field_extensions: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The cost/reads metadata of a graphql-core field (empty for plain fields)."""
    definition = (field_extensions or {}).get(STRAWBERRY_FIELD)
    return getattr(definition, "metadata", None) or {}


def is_plain(field_def: Any) -> bool:
    """A graphql-core field whose resolver is Strawberry's default one: it reads a key of its parent."""
    return getattr(field_def.resolve, "_is_default", False)


class Kind(Enum):
    """What the gateway does for one selected field: the one rule the plan, the answer decoders and the compiled
    projections all follow (`kind_of`)."""

    COPY = "copy"  # the upstream value under the field's key, as it is (checked against the schema's type)
    DERIVE = "derive"  # a pure function of keys the field declares (COMPUTE) and settings, no arguments
    TYPENAME = "typename"  # `__typename`: the object type's name
    FETCH = "fetch"  # through its resolver, in graphql-core (it calls an upstream, or returns its objects)


def kind_of(field_def: Any, field_name: str) -> Kind:
    if field_name == "__typename":
        return Kind.TYPENAME
    if is_plain(field_def):
        return Kind.COPY
    metadata = declared(field_def.extensions)
    if COMPUTE in metadata and RESULT not in metadata and COST not in metadata and not field_def.args:
        return Kind.DERIVE
    return Kind.FETCH


def upstream_key(field_def: Any, graphql_name: str) -> str:
    """The upstream key a plain field reads: its Python name (`opened_by` for `openedBy`)."""
    definition = (field_def.extensions or {}).get(STRAWBERRY_FIELD)
    return getattr(definition, "python_name", None) or graphql_name


# Scalars whose serialiser passes strings as they are: the compiled projections (`gateway/planning/execution.py`,
# `gateway/planning/answers.py`) then copy such strings without calling it.
def passes_strings_unchanged(serialise: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Mark a scalar serialiser that returns a string as it is: the projection then copies such strings."""
    serialise._passes_strings_unchanged = True  # type: ignore[attr-defined]
    return serialise


def passes_strings_matching(
    pattern: re.Pattern[str],
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Mark a scalar serialiser that returns a string matching `pattern` as it is (and refuses other strings):
    the projection copies such strings after the same match, and leaves the others to the serialiser."""

    def mark(serialise: Callable[[Any], Any]) -> Callable[[Any], Any]:
        serialise._string_check = pattern.fullmatch  # type: ignore[attr-defined]
        return passes_strings_unchanged(serialise)

    return mark
