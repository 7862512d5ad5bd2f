"""Which path answered a request, and why not the fastest: the one list of reasons (`Fallback`), recorded per
request (`Route`) and shown as `casegraph_execution_total{path, fallback}`, the span's
`casegraph.execution.path`/`.fallback` and a debug line.

The paths, fastest first: `constant` (an operation of only `__typename` on the root: its `data` known once,
in the plan, no executor), `answers` (a v2 case list decoded straight into its answers, `answers.py`),
`projections` (compiled projections over dicts, `execution.py`; graphql-core runs only the fields that fetch)
and `graphql-core` (its own completion, for an object a projection gave up on, or EXECUTION=plain)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.planning.plan import OperationPlan


class Fallback(Enum):
    """Why a request is not answered by objects decoded straight into their answers (`gateway/planning/answers.py`):
    the one list of reasons, each a label of `casegraph_execution_total` and the span's `casegraph.fallback`."""

    # planned: the compiled projections over dicts answer (and graphql-core only the fields that fetch)
    NO_CASE_LIST = "no-case-list"  # answers are made for a v2 case list; the operation has none
    SHARED_CASES = "shared-cases"  # another field returns v2 cases too (they are shared, as dicts)
    FETCH = "fetch"  # a field below the list's cases fetches: its resolver reads the case as a dict
    ABSTRACT = "abstract"  # a fragment on another type, an abstract type, an object without a selection
    DERIVED_OBJECT = "derived-object"  # a derived field that gives objects (a list of references)
    SAME_KEY_TWICE = "same-key-twice"  # one upstream key under two response keys
    SCALAR = "scalar"  # a scalar msgspec cannot check while decoding (or JSON inside a list)
    ENUM_VALUES = "enum-values"  # an enum whose values are not its names
    NESTED_LIST = "nested-list"  # a list of lists of objects
    EMPTY = "empty"  # nothing selected but fields of other types
    MSGSPEC_REFUSED = "msgspec-refused"  # msgspec refused to make the classes (logged)
    UNDECLARED = "undeclared"  # a resolver field declares no reads: every upstream answer decoded whole
    NOT_PLANNED = "not-planned"  # not a query, or too complex to plan
    PLAIN_EXECUTOR = "plain-executor"  # EXECUTION=plain: graphql-core completes every field
    INCREMENTAL = "incremental"  # @defer/@stream: the parts are made from dicts
    # at run time
    INVALID_VALUE = "invalid-value"  # a value the answer decoder refused: the body decoded as dicts
    GAVE_UP = "gave-up"  # a compiled projection met a value it does not expect: graphql-core completed it


PATHS = ("constant", "answers", "projections", "graphql-core")  # fastest first


@dataclass
class Route:
    """Which path answered one request, and why not a faster one: the slowest path any object took, with the
    first reason that sent one there."""

    path: str = "graphql-core"
    fallback: Fallback | None = Fallback.NOT_PLANNED

    @classmethod
    def planned(cls, plan: OperationPlan) -> Route:
        if plan.constant is not None:
            return cls("constant", None)
        if plan.answer_decoder is not None:
            return cls("answers", None)
        if plan.fallback is Fallback.PLAIN_EXECUTOR:
            return cls("graphql-core", plan.fallback)
        return cls("projections", plan.fallback)

    def fell_back(self, path: str, fallback: Fallback) -> None:
        if PATHS.index(path) > PATHS.index(self.path):
            self.path, self.fallback = path, fallback
