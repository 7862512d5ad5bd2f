"""Upstream objects decoded straight into their answers, for selections that only copy.

When every field a selection asks of an object, and of the objects below it, is a plain copy of an upstream
key (or `__typename`), the object's answer is the upstream object with its keys renamed, reordered and its
values checked, and msgspec can do all of that while it decodes. For such a selection `answer_decoder` makes
two Struct classes per object type: one whose fields decode from the upstream keys (`rename`) and its twin,
with the same fields in the same order (the selection's), which encodes under the response keys (msgspec
renames alike both ways: its issue #828). A generated function switches each decoded object to its twin,
after which the compiled projections (`gateway/planning/execution.py`) pass it through untouched and the encoder
writes it as it stands.

The types are the schema's, checked by msgspec: Int within 32 bits, Float within ±2^53 (where every integer
converts to a float exactly, as graphql-core requires), Boolean, String and ID as strings, enums whose values
are their names, the scalars that pass strings through unchanged, JSON as it comes; non-null fields must be
present and not null. A value outside them fails the decoding, and the body is decoded again as plain dicts
(`gateway/upstream/http.decode_body`), so graphql-core meets the defect as it would have.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypedDict

import msgspec
from graphql import (
    GraphQLEnumType,
    GraphQLObjectType,
    GraphQLSchema,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)

from gateway.schema.declarations import declared, is_plain, upstream_key

log = logging.getLogger("gateway.plan")

INT = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
FLOAT = Annotated[float, msgspec.Meta(ge=-(2**53), le=2**53)]
NO_KEY = "__casegraph_typename_"  # a key no upstream sends (and if one did, only the type's name would do)


class Unfit(Exception):
    """The selection is not a plain copy (a resolver, an abstract type, a value needing conversion)."""


class _Builder:
    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.names: dict[str, Any] = {}
        self.lines: list[str] = []
        self.counter = 0

    def leaf(self, type_: Any) -> tuple[Any, str | None]:
        """The Python type of a leaf, and the name of a check the switch function runs on its values (the
        scalar's own serialiser, for what msgspec cannot check: JSON's depth)."""
        if isinstance(type_, GraphQLEnumType):
            for name, value in type_.values.items():
                if getattr(value.value, "value", value.value) != name:
                    raise Unfit
            return Literal[tuple(type_.values)], None  # type: ignore[misc]
        simple = {"Int": INT, "Float": FLOAT, "String": str, "ID": str, "Boolean": bool}
        if type_.name in simple:
            return simple[type_.name], None
        serialise = type_.coerce_output_value
        if type_.name == "JSON":
            self.counter += 1
            name = f"_json{self.counter}"
            self.names[name] = serialise
            return Any, name
        if getattr(serialise, "_passes_strings_unchanged", False):
            check = getattr(serialise, "_string_check", None)
            if check is None:
                return str, None
            # the same strings the serialiser passes (a full match of its pattern), checked while decoding
            pattern = check.__self__.pattern
            return Annotated[str, msgspec.Meta(pattern=f"^(?:{pattern})\\Z")], None
        raise Unfit

    def wrapped(self, type_: Any, inner: Any) -> tuple[Any, bool]:
        """The Python type of a field of GraphQL type `type_` whose named type maps to `inner`, and whether it
        may be absent or null."""
        if is_non_null_type(type_):
            return self.wrapped(type_.of_type, inner)[0], False
        if is_list_type(type_):
            item, nullable = self.wrapped(type_.of_type, inner)
            return list[item | None] if nullable else list[item], True  # type: ignore[valid-type]
        return inner, True

    def struct(self, type_: GraphQLObjectType, children: dict[str, dict[str, Any]]) -> str:
        """The switch function's name for objects of `type_` with these selected fields."""
        self.counter += 1
        n = self.counter
        fields: list[tuple[Any, ...]] = []
        upstream: dict[str, str] = {}  # struct field -> upstream key (decoding)
        answer: dict[str, str] = {}  # struct field -> response key (encoding)
        switches: list[str] = []
        for condition, under in children.items():
            if condition != type_.name:
                raise Unfit  # fragments on other types: left to the general path
            for response_key, selected in under.items():
                name = f"f{len(fields)}"
                answer[name] = response_key
                if selected.field_name == "__typename":
                    upstream[name] = f"{NO_KEY}{len(fields)}"  # never in a body: the default stays
                    fields.append((name, Literal[type_.name], type_.name))  # type: ignore[valid-type]
                    continue
                field_def = selected.field_def
                if not is_plain(field_def) or declared(field_def.extensions):
                    raise Unfit
                key = upstream_key(field_def, selected.field_name)
                if key in upstream.values():
                    raise Unfit  # one upstream key under two response keys
                upstream[name] = key
                named, depth = field_def.type, 0
                while is_non_null_type(named) or is_list_type(named):
                    depth += is_list_type(named)
                    named = named.of_type
                if is_leaf_type(named):
                    inner, check = self.leaf(named)
                    if check is not None:
                        if depth:
                            raise Unfit
                        switches.append(f"    {check}(o.{name})")
                else:
                    if not isinstance(named, GraphQLObjectType) or not selected.children or depth > 1:
                        raise Unfit
                    switch = self.struct(named, selected.children)
                    inner = self.names[f"_A{switch[3:]}"]
                    if depth == 0:
                        switches.append(f"    x = o.{name}\n    if x is not None:\n        {switch}(x)")
                    else:
                        switches.append(
                            f"    x = o.{name}\n    if x:\n        for y in x:\n"
                            f"            if y is not None:\n                {switch}(y)"
                        )
                python_type, optional = self.wrapped(field_def.type, inner)
                fields.append((name, python_type | None, None) if optional else (name, python_type))
        if not fields:
            raise Unfit
        decoded = msgspec.defstruct(f"{type_.name}{n}", fields, rename=upstream, kw_only=True)
        encoded = msgspec.defstruct(f"{type_.name}{n}Answer", fields, rename=answer, kw_only=True)
        self.names[f"_A{n}"], self.names[f"_B{n}"] = decoded, encoded
        self.lines.append(f"def _sw{n}(o):\n    o.__class__ = _B{n}\n" + "\n".join(switches))
        return f"_sw{n}"


def answer_decoder(
    schema: GraphQLSchema, type_: GraphQLObjectType, children: dict[str, dict[str, Any]]
) -> tuple[Callable[[bytes], Any], type] | None:
    """For a v2 case list answer whose cases' selection only copies: a decoder giving {"cases": [answers...],
    "meta": ...} with each case already its answer, and the answer class; None when the selection is not fit."""
    builder = _Builder(schema)
    try:
        root = builder.struct(type_, children)
    except Unfit:
        return None
    except (TypeError, ValueError) as exc:  # msgspec refused a class: the general path serves it
        log.warning("no answer decoder for this selection: %s", exc)
        return None
    n = root[3:]
    case_list = TypedDict(  # type: ignore[operator]  # noqa: UP013
        "CaseListAnswer", {"cases": list[builder.names[f"_A{n}"]], "meta": Any}, total=False
    )
    decoder = msgspec.json.Decoder(case_list)
    builder.lines.append(
        "def _decode(body):\n"
        "    data = _decoder(body)\n"
        "    try:\n"
        f"        for case in data.get('cases') or ():\n            {root}(case)\n"
        "    except Exception as exc:  # a value a scalar's serialiser refuses: decode the body as dicts\n"
        "        raise _Invalid(str(exc)) from None\n"
        "    return data\n"
    )
    namespace = {**builder.names, "_decoder": decoder.decode, "_Invalid": msgspec.ValidationError}
    exec(compile("\n\n".join(builder.lines), "<casegraph-answers>", "exec"), namespace)
    return namespace["_decode"], builder.names[f"_B{n}"]
