"""Operation plans: what an operation will do, worked out once and reused by every request that sends it.

A request's document text is parsed once (`Document`, kept in the one bounded cache `DOCUMENTS`), validated
once per schema, and each of its operations is planned once per operation name and values of the variables
that `@include`/`@skip` read (`OperationPlan`, kept with its document). A plan holds:

- the operation's name and kind (`operation_of` answers from the same parse: nothing parses twice);
- its depth, aliases and introspection use, found by one walk over the document with each fragment walked
  once (`_Shape`), and the merged field tree (`Selected`: fragments, aliases and directives resolved, each
  fragment flattened once), from which the cost is counted with what each field declares (`gateway/schema/declarations.py`);
- the decoders: for each kind of upstream answer (v2 case lists, v2 cases, v1 lists, v1 cases) a msgspec
  decoder of exactly the keys the operation reads (`Decoders`); anything else in the body is skipped unread;
- for a v2 case list whose cases' selection only copies, the decoder that makes each case its answer and the
  answer's class (`gateway/planning/answers.py`), which the fast path passes through;
- for an operation that selects only `__typename` on the root type (no variables, nothing deferred), its
  whole `data`, known once (`constant`): it is answered without graphql-core (path `constant`);
- the compiled projections of the fast execution path (`gateway/planning/execution.py`);
- lookaheads for resolvers (`reaches`): whether a field below this one is selected for the same part of the
  answer, so a list can fetch its links in one go (a field selected only under `@defer`, or below a `@stream`ed
  list, is not: waiting for it would hold back the part it is not in).

`@defer` and `@stream` change when a part of the answer is sent, not what is planned: a deferred field is in
the tree, its decoders and its cost like any other (counted once), and a document that uses them decodes
into plain dicts (`Document.incremental`: no answers decoded straight into their classes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from graphql import (
    GraphQLSchema,
    OperationDefinitionNode,
)

from gateway.ops.config import Settings
from gateway.planning.answers import AnswerDecoder, Unfit, answer_decoder
from gateway.planning.costs import CostCounter, hashable, size_variables
from gateway.planning.limits import Limits
from gateway.planning.reads import Reads
from gateway.planning.route import Fallback
from gateway.planning.tree import Selected, TooComplex, TreeBuilder
from gateway.schema.declarations import Kind
from gateway.upstream.decoding import FULL, Decoders

if TYPE_CHECKING:
    from gateway.planning.documents import Document


MAX_COSTS_PER_PLAN = 64  # costs kept per plan: by page-size variable values and limits


class OperationPlan:
    """One operation of one document, for one set of @include/@skip values (see the module's docstring)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: Document,
        operation: OperationDefinitionNode,
        switches: Mapping[str, Any],
        answers_allowed: bool = False,
    ) -> None:
        self.schema = schema
        # Whether the executor passes objects decoded into their answers through (the fast one does), and
        # those objects' classes by the field nodes of the selection they answer.
        self.answers_allowed = answers_allowed
        self.answers: dict[frozenset[int], type] = {}
        self.name = operation.name.value if operation.name else None
        self.kind = operation.operation.value
        self.depth, self.introspection = document.shape.of(operation.selection_set)
        for (
            fragment
        ) in document.fragments.values():  # introspection in fragments no operation uses counts too
            self.introspection = self.introspection or document.shape.of(fragment.selection_set)[1]
        self.aliases = document.aliases
        self.incremental = document.incremental
        root = schema.get_root_type(operation.operation)
        self.root_type = root.name if root is not None else "Query"
        self.too_complex = False
        self.tree: dict[str, dict[str, Selected]] = {}
        try:
            self.tree = TreeBuilder(schema, document, switches).children(
                [operation.selection_set], self.root_type
            )
        except TooComplex:
            self.too_complex = True
        # by the values of the size variables, and the limits
        self._costs: LRUCache[tuple[Any, ...], int] = LRUCache(MAX_COSTS_PER_PLAN)
        self.size_variables = size_variables(self.tree)
        # why the cases are not decoded straight into their answers (None when they are)
        self.fallback: Fallback | None = None
        self.answer_decoder: AnswerDecoder | None = None
        self._bound: LRUCache[int, tuple[Settings, Decoders]] = LRUCache(4)
        self.decoders = self._decoders()
        self.constant = self._constant(operation)
        self.projections: dict[tuple[Any, ...], Any] = {}  # the fast path's, compiled on first use

    def _decoders(self) -> Decoders:
        if self.too_complex or self.kind != "query":
            self.fallback = Fallback.NOT_PLANNED
            return FULL
        reads = Reads(self.schema)
        root = self.schema.get_type(self.root_type)
        reads.keys(self.tree, root)
        if reads.unknown:
            self.fallback = Fallback.UNDECLARED
            return FULL
        decoders = Decoders.reading(reads.families)
        if not self.answers_allowed:
            self.fallback = Fallback.PLAIN_EXECUTOR
        elif self.incremental:
            self.fallback = Fallback.INCREMENTAL
        elif reads.registered.get("v2.case") != 1 or len(reads.v2_items) != 1:
            # answers are made for one v2 case list, when no other field returns v2 cases
            self.fallback = Fallback.NO_CASE_LIST if not reads.v2_items else Fallback.SHARED_CASES
        else:
            items, case_type = reads.v2_items[0]
            try:
                self.answer_decoder = answer_decoder(self.schema, case_type, items.children)
            except Unfit as unfit:
                self.fallback = Fallback(unfit.reason)
            else:
                self.answers[frozenset(map(id, items.nodes))] = self.answer_decoder.answer
        return decoders

    def _constant(self, operation: OperationDefinitionNode) -> dict[str, str] | None:
        """The operation's `data` when it selects only `__typename` on the root type (under any aliases) and
        declares no variables (graphql-core would check their values): the same for every request, so no
        executor is needed. None for any other operation."""
        if (
            self.fallback is Fallback.NOT_PLANNED
            or not self.answers_allowed
            or self.incremental
            or operation.variable_definitions
            or list(self.tree) != [self.root_type]
        ):
            return None
        selected = self.tree[self.root_type]
        if not selected or any(s.kind is not Kind.TYPENAME or s.later for s in selected.values()):
            return None
        return {key: self.root_type for key in selected}

    def decoders_for(self, settings: Settings) -> Decoders:
        """The decoders of this plan for a process's settings (the answer decoder computes derived fields,
        which may read settings)."""
        if self.answer_decoder is None:
            return self.decoders
        found = self._bound.get(id(settings))
        if found is None or found[0] is not settings:
            bound = replace(self.decoders, v2_list=partial(self.answer_decoder.decode, s=settings))
            found = self._bound[id(settings)] = (settings, bound)
        return found[1]

    def cost(self, variables: Mapping[str, Any], limits: Limits) -> int:
        """Upstream calls the operation could make (stops counting past `limits.max_cost`)."""
        if self.too_complex:
            return limits.max_cost + 1
        # what the count depends on: the size variables, the list size assumed and where counting stops
        key = (
            tuple(hashable(variables.get(name)) for name in self.size_variables),
            limits.list_size,
            limits.max_cost,
        )
        found = self._costs.get(key)
        if found is None:
            found = self._costs[key] = CostCounter(self.schema, variables, limits).of(
                self.tree, self.root_type, 1
            )
        return found

    def reaches(self, response_key: str, *path: str) -> bool:
        """Whether the root field `response_key` selects fields named `path` below it for the same part of the
        answer (any alias, any type condition): a resolver's lookahead, honouring fragments, @include/@skip,
        and @defer/@stream (a field that comes in a later part is not reached: see `Selected.later`)."""
        level = [s for under in self.tree.values() for k, s in under.items() if k == response_key]
        for name in path:
            level = [
                s
                for selected in level
                for under in selected.children.values()
                for s in under.values()
                if s.field_name == name and not s.later
            ]
        return bool(level)
