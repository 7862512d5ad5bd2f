"""The fast execution path: plain data completed by compiled projections, the rest by graphql-core.

Most of a big answer is upstream JSON copied field by field: every field that has no resolver reads a
key of a dict. graphql-core completes each such field on its own (resolve info, path, completion), which
costs far more than the data. `FastExecutor` compiles, once per selection, a Python function that builds
the answer for all the plain fields of an object in one dict literal (aliases, fragments, `@include`/
`@skip` and `__typename` already resolved by field collection; scalars and enums through the schema's
own serialisers). Fields with resolvers (links, dataloaders, derived values) run through graphql-core
as usual, and their plain sub-objects come back to the compiled path.

Anything a projection does not expect (a null for a non-null field, a value of the wrong shape, a
serialiser that refuses) makes it give up on that object, which is then executed the normal way; so
errors, their messages and their paths are graphql-core's own. `tests/test_fast_path.py` checks the
two paths give byte-identical answers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import (
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLOutputType,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.pyutils import Path, Undefined
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.planning.codegen import Source
from gateway.planning.route import Fallback
from gateway.schema.declarations import COMPUTE, RESOLVE_NOW, Kind, declared, kind_of, upstream_key
from gateway.schema.scalars import STRICT_OUTPUT, strict_output

log = logging.getLogger("gateway.plan")

Projection = Callable[[Any, Any], Any]  # (upstream object, the request's context) -> its answer


class ObjectProjection(NamedTuple):
    """One object selection's compiled projection, and the fields it leaves to graphql-core (by response
    name, with their field details): those that fetch, or whose value the projection cannot complete."""

    projection: Projection
    rest: list[tuple[str, Any]]


class GiveUp(Exception):
    """The value is not what the projection expects: execute this object the normal way."""


def _give_up(*_: Any) -> Any:
    raise GiveUp


class _Compiler(Source):
    """Generates the source of projection functions for one object selection; its methods are named after
    the graphql-core executor's methods whose work the code they generate does."""

    def __init__(self, executor: FastExecutor) -> None:
        super().__init__({"GiveUp": GiveUp, "_give_up": _give_up})
        self.executor = executor

    def _var(self) -> str:
        return f"_v{self.number()}"

    def _bind(self, source: str) -> tuple[str, str]:
        """(name, expression binding it): `source` evaluated once, then read by name."""
        if source.isidentifier():
            return source, source
        name = self._var()
        return name, f"({name} := {source})"

    def complete_leaf_value(self, type_: GraphQLLeafType, source: str, non_null: bool) -> str:
        """An expression serialising `source` as the schema's leaf type does: common values inline,
        anything else (and every null) through the type's own serialiser."""
        coerce = type_.coerce_output_value
        accepts = STRICT_OUTPUT.get(type_.name)

        def slow(result: Any) -> Any:
            if result is None:
                if non_null:
                    raise GiveUp
                return None
            if accepts is not None and not accepts(result):
                raise GiveUp  # graphql-core's path raises the error (`EarlyExecutor.complete_leaf_value`)
            coerced = coerce(result)
            if coerced is None or coerced is Undefined:
                raise GiveUp
            return coerced

        slow_name = self.name("_leaf", slow)
        v, bound = self._bind(source)
        if isinstance(type_, GraphQLEnumType):
            table = {}
            for enum_value in type_.values.values():
                raw = getattr(enum_value.value, "value", enum_value.value)
                with contextlib.suppress(Exception):
                    if isinstance(raw, str) and isinstance(coerced := coerce(raw), str):
                        table[raw] = coerced
            table_name = self.name("_enum", table)
            return f"({table_name}[{v}] if {bound}.__class__ is str and {v} in {table_name} else {slow_name}({v}))"
        if type_.name == "Float":
            # graphql-core's rules: a finite float as it is (x - x is 0.0 only when finite), an int that a
            # float holds exactly as a float; anything else (and None) through the serialiser
            return (
                f"({v} if {bound}.__class__ is float and {v} - {v} == 0.0 else float({v}) "
                f"if {v}.__class__ is int and -9007199254740992 <= {v} <= 9007199254740992 else {slow_name}({v}))"
            )
        if type_.name == "Int":
            test = f"{bound}.__class__ is int and -2147483648 <= {v} <= 2147483647"
        else:
            fast_class = {"String": "str", "ID": "str", "Boolean": "bool"}.get(type_.name)
            if fast_class is None and getattr(coerce, "_passes_strings_unchanged", False):
                fast_class = "str"
            if fast_class is None:
                return f"{slow_name}({source})"
            test = f"{bound}.__class__ is {fast_class}"
        if not non_null:
            test = f"{bound} is None or {v}.__class__ is {fast_class}" if type_.name != "Int" else test
        check = getattr(coerce, "_string_check", None)
        if check is not None:  # `or` binds looser than `and`: a null still passes as it is
            test = f"{test} and {self.name('_check', check)}({v}) is not None"
        return f"({v} if {test} else {slow_name}({v}))"

    def complete_value(self, type_: GraphQLOutputType, field_details_list: Any, source: str) -> str | None:
        """An expression completing `source` (evaluated once) as `type_`, or None if it is not all plain."""
        non_null = is_non_null_type(type_)
        inner = type_.of_type if non_null else type_  # type: ignore[union-attr]
        if is_leaf_type(inner):
            return self.complete_leaf_value(inner, source, non_null)
        if is_list_type(inner):
            return self.complete_list_value(inner, field_details_list, source, non_null)
        if is_abstract_type(inner) or not isinstance(inner, GraphQLObjectType):
            return None
        return self.complete_object_value(inner, field_details_list, source, non_null)

    def complete_list_value(
        self, type_: Any, field_details_list: Any, source: str, non_null: bool
    ) -> str | None:
        item = self._var()
        item_expr = self.complete_value(type_.of_type, field_details_list, item)
        if item_expr is None:
            return None
        v, bound = self._bind(source)
        none = "_give_up()" if non_null else "None"
        return (
            f"({none} if {bound} is None else [{item_expr} for {item} in {v}] "
            f"if {v}.__class__ is list else _give_up())"
        )

    def complete_object_value(
        self, type_: GraphQLObjectType, field_details_list: Any, source: str, non_null: bool
    ) -> str | None:
        grouped, defer_usages, _ = self.executor.collect_subfields(type_, field_details_list)
        if defer_usages:
            return None
        body, rest = self.execute_fields(type_, grouped)
        if rest:
            return None
        name = self.name("_obj", None)
        answer = self.executor.answers.get(frozenset(id(details.node) for details in field_details_list))
        already = ""
        if answer is not None:  # decoded into its answer; a dict here: the answer decoder refused the body
            already = (
                f"    if _o.__class__ is {self.name('_answer', answer)}:\n        return _o\n"
                f"    if _o.__class__ is dict:\n        {self.name('_refused', _refused)}(_ctx)\n"
            )
        type_check = ""
        if type_.is_type_of is not None:
            type_check = (
                f"    if not {self.name('_is_type', type_.is_type_of)}(_o, None):\n        raise GiveUp\n"
            )
        self.lines.append(
            f"def {name}(_o, _ctx):\n"
            f"{already}"
            f"    if _o.__class__ is not dict:\n"
            f"        if _o is None:\n            {'raise GiveUp' if non_null else 'return None'}\n"
            f"        raise GiveUp\n"
            f"{type_check}"
            f"    _g = _o.get\n"
            f"    return {body}\n"
        )
        return f"{name}({source}, _ctx)"

    def execute_fields(self, type_: GraphQLObjectType, grouped: Any) -> tuple[str, list[tuple[str, Any]]]:
        """A dict literal of the object's fields in answer order, and the fields it leaves to graphql-core
        (those that fetch, or whose value is not all plain): None placeholders in the dict, so the answer
        keeps graphql-core's key order. Each field as its kind (`gateway/schema/declarations.kind_of`) says."""
        items, rest = [], []
        for response_name, field_details_list in grouped.items():
            field_name = field_details_list[0].node.name.value
            field_def = self.executor.schema.get_field(type_, field_name)
            kind = kind_of(field_def, field_name)
            expr: str | None = None
            if kind is Kind.TYPENAME:
                expr = repr(type_.name)
            elif kind is Kind.COPY:
                key = upstream_key(field_def, field_name)
                expr = self.complete_value(field_def.type, field_details_list, f"_g({key!r})")
            elif kind is Kind.DERIVE:
                # a pure function of the keys it reads: its error is graphql-core's to report (GiveUp)
                compute = self.name("_compute", declared(field_def.extensions)[COMPUTE])
                expr = self.complete_value(
                    field_def.type, field_details_list, f"{compute}(_o, _ctx.settings)"
                )
            elif not field_def.args and RESOLVE_NOW in declared(field_def.extensions):
                # a fetching resolver that may know its value at once; an error or a value not known yet is
                # not what the completion expects: the object goes to graphql-core
                resolve = self.name("_resolve", declared(field_def.extensions)[RESOLVE_NOW])
                expr = self.complete_value(field_def.type, field_details_list, f"{resolve}(_o, _ctx)")
            if expr is None:
                rest.append((response_name, field_details_list))
                items.append(f"{response_name!r}: None")
                continue
            items.append(f"{response_name!r}: {expr}")
        return "{" + ", ".join(items) + "}", rest

    def compile(self, type_: GraphQLObjectType, grouped: Any) -> ObjectProjection:
        """The projection of one object selection (the executor's `execute_fields` for dicts)."""
        body, rest = self.execute_fields(type_, grouped)
        self.lines.append(f"def _execute_fields(_o, _ctx):\n    _g = _o.get\n    return {body}\n")
        namespace = self.namespace("<casegraph-projection>")
        return ObjectProjection(namespace["_execute_fields"], rest)


def _refused(context: Any) -> None:
    context.route.fell_back("projections", Fallback.INVALID_VALUE)


class EarlyExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor with early execution: the work of a deferred fragment or a streamed list item
    starts as soon as it is known (beside the first part's, not after it), so the dataloaders batch the
    loads of every deferred part and streamed item of a request together (20 deferred `case` fields: one
    `case_ids` call) and the later parts are ready sooner. The first part never waits for them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enable_early_execution = True

    def complete_leaf_value(self, return_type: GraphQLLeafType, result: Any) -> Any:  # type: ignore[override]
        """graphql-core's completion, strict on the built-in scalars: an upstream value of another JSON type
        (7 for a String, true for an Int) is UPSTREAM_BAD_RESPONSE, not coerced (`STRICT_OUTPUT`)."""
        strict_output(return_type.name, result)
        return super().complete_leaf_value(return_type, result)


class FastExecutor(EarlyExecutor):
    """graphql-core's executor, with objects' plain fields completed by compiled projections, and objects
    decoded straight into their answers (`gateway/planning/answers.py`) passed through as they are. The request's
    context (`gateway/planning/context.RequestContext`) brings the operation's plan and records the path taken (`Route`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local: dict[int, tuple[Any, ObjectProjection]] = {}
        manager = self.middleware_manager
        self._fast = not (manager is not None and getattr(manager, "_middleware_resolvers", None))
        # The operation's plan (gateway/planning/plan.py) keeps the compiled projections: the plan is per document
        # text and @include/@skip values, and holds the parsed document, so its AST nodes (whose ids key the
        # projections) live as long as it. Without a plan they are compiled for this request only.
        context = self.context_value
        plan = context.plan if context is not None else None
        self._projections: dict[tuple[Any, ...], Any] = plan.projections if plan is not None else {}
        self.answers: dict[frozenset[int], type] = plan.answers if plan is not None else {}
        self._answer_classes = frozenset(self.answers.values())

    def _projection(self, parent_type: GraphQLObjectType, grouped: Any) -> ObjectProjection:
        """The projection of one object selection: from this request's memo, else from the operation plan's
        projections, else compiled."""
        local = self._local.get(id(grouped))
        if local is not None:
            return local[1]
        nodes = tuple(field_details.node for fdl in grouped.values() for field_details in fdl)
        key = (parent_type.name, tuple(grouped), tuple(map(id, nodes)))
        shared = self._projections.get(key)
        if shared is None:
            compiled = _Compiler(self).compile(parent_type, grouped)
            shared = self._projections[key] = (compiled.projection, tuple(name for name, _ in compiled.rest))
        found = ObjectProjection(shared[0], [(name, grouped[name]) for name in shared[1]])
        # graphql-core memoises grouped field sets per selection within a request, so one projection serves
        # every item of a list; `grouped` is kept alive with it so that its id stays unique.
        self._local[id(grouped)] = (grouped, found)
        return found

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if result.__class__ in self._answer_classes:
            # decoded straight into its answer, met by graphql-core when a projection above gave up: it is
            # already complete (its fields are not the schema's names to resolve again)
            return result
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        if not self._fast or source_value.__class__ is not dict:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        projection, rest = self._projection(parent_type, grouped_field_set)
        try:
            results = projection(source_value, self.context_value)
        except Exception as exc:
            # Broad on purpose: a value the projection does not expect (GiveUp), a serialiser's or a derived
            # field's error, anything: graphql-core completes the object again and reports that error exactly
            # at its path. What it was is logged, so a fault in generated code does not pass for a bad value.
            if log.isEnabledFor(logging.DEBUG):
                where = path.as_list() if path is not None else []
                log.debug(
                    "the projection of %s gave up (%s) at %s", parent_type.name, type(exc).__name__, where
                )
            if self.context_value is not None:
                self.context_value.route.fell_back("graphql-core", Fallback.GAVE_UP)
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        if not rest:
            return results
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in rest:
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is Undefined:
                    del results[response_name]
                    continue
                results[response_name] = result
                if is_awaitable(result):
                    awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
