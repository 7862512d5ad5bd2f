"""Upstream objects decoded straight into their answers: copied and derived fields, no resolver.

When every field a selection asks of an object, and of the objects below it, is a copy of an upstream key, a
field derived from keys the object declares (`gateway/schema/declarations.py`: `derived`, `Kind.DERIVE`) or `__typename`, the
object's answer is the upstream object with its keys renamed, reordered, its values checked and its derived
values added, and msgspec does most of that while it decodes. For such a selection `answer_decoder` makes two
Struct classes per object type: one whose fields decode from the upstream keys (`rename`) and its twin, with
the same fields in the same order (the selection's), which encodes under the response keys (msgspec renames
alike both ways: its issue #828). A generated function switches each decoded object to its twin and computes
its derived fields from the keys they declare, after which the compiled projections (`gateway/planning/execution.py`)
pass it through untouched and the encoder writes it as it stands.

Keys a derived field reads that the selection does not copy are decoded into fields of their own (as they come,
like the dicts the resolver would get) and set to `msgspec.UNSET` once used: the encoder leaves them out.

The types are the schema's, checked by msgspec: Int within 32 bits, Float within ±2^53 (where every integer
converts to a float exactly, as graphql-core requires), Boolean, String and ID as strings, enums whose values
are their names, the scalars that pass strings through unchanged, JSON as it comes; non-null fields must be
present and not null. A derived value goes through its type's serialiser, as graphql-core's completion does.
A value outside them, or a derived field's error, fails the decoding, and the body is decoded again as plain
dicts (`gateway/upstream/http.decode_body`), so graphql-core meets the defect as it would have (the request
records the fallback: `gateway/planning` `Fallback.INVALID_VALUE`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

import msgspec
from graphql import (
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLSchema,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.pyutils import Undefined

from gateway.planning.codegen import Source
from gateway.schema.declarations import COMPUTE, READS, Kind, declared, upstream_key

log = logging.getLogger("gateway.plan")

INT = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
FLOAT = Annotated[float, msgspec.Meta(ge=-(2**53), le=2**53)]
NO_KEY = "__casegraph_computed_"  # a key no upstream sends (and if one did, it would be replaced)


class Unfit(Exception):
    """The selection cannot be decoded straight into its answers; `reason` says why (a `Fallback` value)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AnswerDecoder:
    """A v2 case list's decoder into answers: `decode(body, settings)` gives {"cases": [answers...], "meta":
    ...}; `answer` is the cases' answer class, which the compiled projections pass through."""

    decode: Callable[[bytes, Any], Any]
    answer: type


def _completion(compute: Callable[[Any, Any], Any], type_: Any) -> Callable[[Any, Any], Any]:
    """The derived value as graphql-core completes a leaf: null allowed where the type is nullable, else the
    serialiser's output (None or Undefined from it is an error)."""
    non_null = is_non_null_type(type_)
    leaf: GraphQLLeafType = type_.of_type if non_null else type_
    serialise = leaf.serialize

    def complete(parent: Any, settings: Any) -> Any:
        result = compute(parent, settings)
        if result is None:
            if non_null:
                raise TypeError("a non-null derived field computed null")
            return None
        serialised = serialise(result)
        if serialised is None or serialised is Undefined:
            raise TypeError("the serialiser refused a derived value")
        return serialised

    return complete


class _Builder(Source):
    def __init__(self, schema: GraphQLSchema) -> None:
        super().__init__()
        self.schema = schema

    def leaf_type(self, type_: Any) -> tuple[Any, str | None]:
        """The Python type of a leaf, and the name of a check the switch function runs on its values (the
        scalar's own serialiser, for what msgspec cannot check: JSON's depth)."""
        if isinstance(type_, GraphQLEnumType):
            for name, value in type_.values.items():
                if getattr(value.value, "value", value.value) != name:
                    raise Unfit("enum-values")
            return Literal[tuple(type_.values)], None  # type: ignore[misc]
        simple = {"Int": INT, "Float": FLOAT, "String": str, "ID": str, "Boolean": bool}
        if type_.name in simple:
            return simple[type_.name], None
        serialise = type_.coerce_output_value
        if type_.name == "JSON":
            return Any, self.name("_json", serialise)
        if getattr(serialise, "_passes_strings_unchanged", False):
            check = getattr(serialise, "_string_check", None)
            if check is None:
                return str, None
            # the same strings the serialiser passes (a full match of its pattern), checked while decoding
            pattern = check.__self__.pattern
            return Annotated[str, msgspec.Meta(pattern=f"^(?:{pattern})\\Z")], None
        raise Unfit("scalar")

    def wrapped(self, type_: Any, inner: Any) -> tuple[Any, bool]:
        """The Python type of a field of GraphQL type `type_` whose named type maps to `inner`, and whether it
        may be absent or null."""
        if is_non_null_type(type_):
            return self.wrapped(type_.of_type, inner)[0], False
        if is_list_type(type_):
            item, nullable = self.wrapped(type_.of_type, inner)
            return list[item | None] if nullable else list[item], True  # type: ignore[valid-type]
        return inner, True

    def struct(self, type_: GraphQLObjectType, children: dict[str, dict[str, Any]]) -> tuple[str, type, type]:
        """For objects of `type_` with these selected fields: the switch function's name, the class they
        decode into and their answer class."""
        fields: list[tuple[Any, ...]] = []
        upstream: dict[str, str] = {}  # struct field -> upstream key (decoding)
        answer: dict[str, str] = {}  # struct field -> response key (encoding)
        copied: dict[str, str] = {}  # upstream key -> the struct field copying it
        derived: list[tuple[str, Any]] = []  # (struct field, selected)
        steps: list[str] = []
        for condition, under in children.items():
            if condition != type_.name:
                raise Unfit("abstract")  # fragments on other types: left to the projections
            for response_key, selected in under.items():
                name = f"f{len(fields)}"
                answer[name] = response_key
                if selected.kind is Kind.TYPENAME:
                    upstream[name] = f"{NO_KEY}{len(fields)}"  # never in a body: the default stays
                    fields.append((name, Literal[type_.name], type_.name))  # type: ignore[valid-type]
                elif selected.kind is Kind.DERIVE:
                    upstream[name] = f"{NO_KEY}{len(fields)}"  # computed in the switch
                    fields.append((name, Any, None))
                    derived.append((name, selected))
                elif selected.kind is Kind.COPY:
                    key = upstream_key(selected.field_def, selected.field_name)
                    if key in copied:
                        raise Unfit("same-key-twice")  # one upstream key under two response keys
                    upstream[name], copied[key] = key, name
                    fields.append(self.copy(name, selected, steps))
                else:
                    raise Unfit("fetch")
        if not fields:
            raise Unfit("empty")
        hidden: dict[str, str] = {}  # upstream key -> the struct field decoding it for derived fields only
        for name, selected in derived:
            named = selected.field_def.type
            if not is_leaf_type(named.of_type if is_non_null_type(named) else named):
                raise Unfit("derived-object")
            metadata = declared(selected.field_def.extensions)
            inputs = []
            for key in metadata[READS]:
                if key in copied:
                    inputs.append(f"{key!r}: o.{copied[key]}")
                    continue
                if key not in hidden:
                    field = hidden[key] = f"h{len(hidden)}"
                    upstream[field] = answer[field] = key
                    fields.append((field, Any, msgspec.UNSET))
                inputs.append(None)  # filled below: present only when the body has it
            complete = self.name("_derive", _completion(metadata[COMPUTE], named))
            lines = ["    m = {" + ", ".join(i for i in inputs if i is not None) + "}"]
            for key in metadata[READS]:
                if key in hidden:
                    lines.append(
                        f"    if o.{hidden[key]} is not UNSET:\n        m[{key!r}] = o.{hidden[key]}"
                    )
            lines.append(f"    o.{name} = {complete}(m, s)")
            steps[:0] = lines
        steps += [f"    o.{field} = UNSET" for field in hidden.values()]
        n = self.number()
        decoded = msgspec.defstruct(f"{type_.name}{n}", fields, rename=upstream, kw_only=True)
        encoded = msgspec.defstruct(f"{type_.name}{n}Answer", fields, rename=answer, kw_only=True)
        self.names[f"_B{n}"] = encoded
        self.lines.append(f"def _sw{n}(o, s):\n    o.__class__ = _B{n}\n" + "\n".join(steps))
        return f"_sw{n}", decoded, encoded

    def copy(self, name: str, selected: Any, steps: list[str]) -> tuple[Any, ...]:
        """The struct field copying a plain field's upstream value (and the switch's steps for what is below)."""
        field_def = selected.field_def
        named, depth = field_def.type, 0
        while is_non_null_type(named) or is_list_type(named):
            depth += is_list_type(named)
            named = named.of_type
        if is_leaf_type(named):
            inner, check = self.leaf_type(named)
            if check is not None:
                if depth:
                    raise Unfit("scalar")
                steps.append(f"    {check}(o.{name})")
        else:
            if not isinstance(named, GraphQLObjectType) or not selected.children:
                raise Unfit("abstract")
            if depth > 1:
                raise Unfit("nested-list")
            switch, inner, _ = self.struct(named, selected.children)
            if depth == 0:
                steps.append(f"    x = o.{name}\n    if x is not None:\n        {switch}(x, s)")
            else:
                steps.append(
                    f"    x = o.{name}\n    if x:\n        for y in x:\n"
                    f"            if y is not None:\n                {switch}(y, s)"
                )
        python_type, optional = self.wrapped(field_def.type, inner)
        return (name, python_type | None, None) if optional else (name, python_type)


def answer_decoder(
    schema: GraphQLSchema, type_: GraphQLObjectType, children: dict[str, dict[str, Any]]
) -> AnswerDecoder:
    """For a v2 case list answer whose cases' selection only copies and derives: its decoder into answers
    (raises Unfit, with the reason, when the selection is not fit)."""
    builder = _Builder(schema)
    try:
        root, decoded, answer = builder.struct(type_, children)
    except (TypeError, ValueError) as exc:  # msgspec refused a class: the projections serve it
        log.warning("no answer decoder for this selection: %s", exc)
        raise Unfit("msgspec-refused") from exc
    case_list = TypedDict(  # type: ignore[operator]  # noqa: UP013
        "CaseListAnswer", {"cases": list[decoded], "meta": Any}, total=False
    )
    decoder = msgspec.json.Decoder(case_list)
    builder.lines.append(
        "def _decode(body, s):\n"
        "    data = _decoder(body)\n"
        "    try:\n"
        f"        for case in data.get('cases') or ():\n            {root}(case, s)\n"
        "    except Exception as exc:  # a value the schema refuses: the body is decoded as dicts\n"
        "        raise _Invalid(str(exc)) from None\n"
        "    return data\n"
    )
    builder.names.update(_decoder=decoder.decode, _Invalid=msgspec.ValidationError, UNSET=msgspec.UNSET)
    namespace = builder.namespace("<casegraph-answers>", "\n\n")
    return AnswerDecoder(namespace["_decode"], answer)
