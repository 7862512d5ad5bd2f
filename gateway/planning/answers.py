"""Upstream objects decoded straight into their answers: copied and derived fields, no resolver.

When every field a selection asks of an object, and of the objects below it, is a copy of an upstream key, a
field derived from keys the object declares (`gateway/schema/declarations.py`: `derived`, `Kind.DERIVE`) or `__typename`, the
object's answer is the upstream object with its keys renamed, reordered, its values checked and its derived
values added, and msgspec does most of that while it decodes. For such a selection `answer_decoder` makes two
Struct classes per object type: one whose fields decode from the upstream keys (`rename`) and its twin, with
the same fields in the same order (the selection's), which encodes under the response keys (msgspec renames
alike both ways: its issue #828). One generated function, its loops over lists inline (no call per object),
switches each decoded object to its twin and computes its derived fields from the keys they declare, their
results checked inline for the usual types (a derived field of one key's value, `OfKey`, is given it directly);
after it the compiled projections (`gateway/planning/execution.py`) pass the objects through untouched and the
encoder writes them as they stand. `DateTime` values stay the raw JSON they came as and are checked together
once the body is decoded (`check_timestamps`).

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
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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
from gateway.schema.declarations import COMPUTE, READS, Kind, OfKey, declared, upstream_key
from gateway.schema.scalars import STRICT_OUTPUT

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


def _completion(type_: Any) -> Callable[[Any], Any]:
    """A computed value completed as graphql-core completes a leaf: null allowed where the type is nullable,
    else the serialiser's output (None or Undefined from it is an error)."""
    non_null = is_non_null_type(type_)
    leaf: GraphQLLeafType = type_.of_type if non_null else type_
    serialise = leaf.serialize
    accepts = STRICT_OUTPUT.get(leaf.name)

    def complete(result: Any) -> Any:
        if result is None:
            if non_null:
                raise TypeError("a non-null derived field computed null")
            return None
        if accepts is not None and not accepts(result):
            raise TypeError("a derived value of another type than its scalar's (`STRICT_OUTPUT`)")
        serialised = serialise(result)
        if serialised is None or serialised is Undefined:
            raise TypeError("the serialiser refused a derived value")
        return serialised

    return complete


# `DateTime` values are decoded as the raw JSON they are (`msgspec.Raw`, encoded back byte for byte) and
# checked together once the body is decoded: their shape (digits made zeros, then compared with RFC 3339's
# forms) and their calendar (msgspec's C parser: months, days, hours, offsets) are each one pass over all of
# them, where a pattern per value cost about a quarter of the decoding. A value either check refuses, msgspec
# being the stricter (no leap second, no 30 February), fails the decoding: graphql-core then meets it.
_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_TIMESTAMP_SHAPE = re.compile(rb'"0000-00-00T00:00:00(?:\.0+)?(?:Z|[+-]00:00)"')
_USUAL_SHAPE = b'"0000-00-00T00:00:00Z",'
_TIMESTAMPS = {
    False: msgspec.json.Decoder(list[datetime]),
    True: msgspec.json.Decoder(list[datetime | None]),
}


def check_timestamps(raws: list[msgspec.Raw], nullable: bool) -> None:
    """Raise ValueError (msgspec's ValidationError is one) unless every raw value is an RFC 3339 `date-time`
    string (or null, when `nullable`)."""
    if not raws:
        return
    joined = b",".join(raws)
    shapes = joined.translate(_DIGITS)
    if shapes + b"," != _USUAL_SHAPE * len(raws):
        for shape in set(shapes.split(b",")):
            if shape != b"null" and not _TIMESTAMP_SHAPE.fullmatch(shape):
                raise ValueError("a DateTime that is not an RFC 3339 date-time")
    _TIMESTAMPS[nullable].decode(b"[" + joined + b"]")


Lines = Callable[[str, str], list[str]]  # the statements for the object named by the first argument, indented


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

    def struct(
        self, type_: GraphQLObjectType, children: dict[str, dict[str, Any]]
    ) -> tuple[Lines, type, type]:
        """For objects of `type_` with these selected fields: the statements switching one to its answer (and
        those below it), the class they decode into and their answer class."""
        fields: list[tuple[Any, ...]] = []
        upstream: dict[str, str] = {}  # struct field -> upstream key (decoding)
        answer: dict[str, str] = {}  # struct field -> response key (encoding)
        copied: dict[str, str] = {}  # upstream key -> the struct field copying it
        derived: list[tuple[str, Any]] = []  # (struct field, selected)
        steps: list[Lines] = []
        for condition, under in children.items():
            if condition != type_.name:
                raise Unfit("abstract")  # fragments on other types: left to the projections
            read = {  # keys derived fields read: a copy of one keeps its decoded value (no raw timestamps)
                key
                for selected in under.values()
                if selected.kind is Kind.DERIVE
                for key in declared(selected.field_def.extensions)[READS]
            }
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
                    fields.append(self.copy(name, selected, steps, key in read))
                else:
                    raise Unfit("fetch")
        if not fields:
            raise Unfit("empty")
        hidden: dict[str, str] = {}  # upstream key -> the struct field decoding it for derived fields only
        derive_steps: list[Lines] = []
        for name, selected in derived:
            named = selected.field_def.type
            if not is_leaf_type(named.of_type if is_non_null_type(named) else named):
                raise Unfit("derived-object")
            metadata = declared(selected.field_def.extensions)
            for key in metadata[READS]:
                if key not in copied and key not in hidden:
                    field = hidden[key] = f"h{len(hidden)}"
                    upstream[field] = answer[field] = key
                    fields.append((field, Any, msgspec.UNSET))
            derive_steps.append(self.derive(name, named, metadata, copied, hidden))
        steps[:0] = derive_steps
        if hidden:
            clear = " = ".join(f"{{o}}.{field}" for field in hidden.values()) + " = UNSET"
            steps.append(lambda v, ind: [ind + clear.replace("{o}", v)])
        n = self.number()
        decoded = msgspec.defstruct(f"{type_.name}{n}", fields, rename=upstream, kw_only=True)
        encoded = msgspec.defstruct(f"{type_.name}{n}Answer", fields, rename=answer, kw_only=True)
        self.names[f"_B{n}"] = encoded

        def lines(v: str, ind: str) -> list[str]:
            out = [f"{ind}{v}.__class__ = _B{n}"]
            for step in steps:
                out += step(v, ind)
            return out

        return lines, decoded, encoded

    def derive(
        self, name: str, type_: Any, metadata: Any, copied: dict[str, str], hidden: dict[str, str]
    ) -> Lines:
        """The statements computing a derived field from the keys it declares, then its value checked as its
        type's completion checks it: inline for the usual results, else by the completion itself."""
        compute, reads = metadata[COMPUTE], metadata[READS]
        complete = _completion(type_)
        non_null = is_non_null_type(type_)
        leaf = type_.of_type if non_null else type_
        if isinstance(leaf, GraphQLEnumType):  # each value's completion, looked up once known
            table: dict[Any, Any] = {}

            def complete_and_keep(result: Any) -> Any:
                table[result] = completed = complete(result)  # only what it accepts: the enum's few values
                return completed

            table_name, keep = self.name("_enum", table), self.name("_keep", complete_and_keep)
            check = f"t if (t := {table_name}.get(r, UNSET)) is not UNSET else {keep}(r)"  # one hash
        else:
            done = self.name("_complete", complete)
            fast = {
                "ID": "r.__class__ is str",
                "String": "r.__class__ is str",
                "Boolean": "r.__class__ is bool",
                "Int": "r.__class__ is int and -2147483648 <= r <= 2147483647",
            }.get(leaf.name)
            if fast is None:
                check = f"{done}(r)"
            else:
                fast = fast if non_null else f"r is None or {fast}"
                check = f"r if {fast} else {done}(r)"
        if isinstance(compute, OfKey):  # a function of one key's value (or the value): no dict, no lookup
            key = compute.key
            source = "{o}." + (copied.get(key) or hidden[key])
            first = (
                [f"r = {source}"] if key in copied else [f"r = {source}", "if r is UNSET:", "    r = None"]
            )
            if compute.function is not None:
                first.append(f"r = {self.name('_of_key', compute.function)}(r)")
        else:
            function = self.name("_derive", compute)
            items = ", ".join(f"{key!r}: {{o}}.{copied[key]}" for key in reads if key in copied)
            first = ["m = {" + items + "}"]
            for key in reads:
                if key in hidden:
                    first += [
                        f"if {{o}}.{hidden[key]} is not UNSET:",
                        f"    m[{key!r}] = {{o}}.{hidden[key]}",
                    ]
            first.append(f"r = {function}(m, s)")
        template = [*first, f"{{o}}.{name} = {check}"]  # "{o}": the object's name
        return lambda v, ind: [ind + line.replace("{o}", v) for line in template]

    def copy(self, name: str, selected: Any, steps: list[Lines], read: bool) -> tuple[Any, ...]:
        """The struct field copying a plain field's upstream value (and the switch's steps for what is below).
        `read`: a derived field reads the key too (it then gets the decoded value, not the raw JSON)."""
        field_def = selected.field_def
        named, depth = field_def.type, 0
        while is_non_null_type(named) or is_list_type(named):
            depth += is_list_type(named)
            named = named.of_type
        if is_leaf_type(named) and named.name == "DateTime" and not depth and not read:
            if not is_non_null_type(field_def.type):
                steps.append(
                    lambda v, ind: [
                        f"{ind}x = {v}.{name}",
                        f"{ind}if x is not None:",
                        f"{ind}    add_nullable(x)",
                    ]
                )
                return (name, msgspec.Raw, None)
            steps.append(lambda v, ind: [f"{ind}add_timestamp({v}.{name})"])
            return (name, msgspec.Raw)
        if is_leaf_type(named):
            inner, check = self.leaf_type(named)
            if check is not None:
                if depth:
                    raise Unfit("scalar")
                steps.append(lambda v, ind: [f"{ind}{check}({v}.{name})"])
        else:
            if not isinstance(named, GraphQLObjectType) or not selected.children:
                raise Unfit("abstract")
            if depth > 1:
                raise Unfit("nested-list")
            below, inner, _ = self.struct(named, selected.children)
            steps.append(self.below(name, below, depth > 0, field_def.type))
        python_type, optional = self.wrapped(field_def.type, inner)
        return (name, python_type | None, None) if optional else (name, python_type)

    def below(self, name: str, lines: Lines, listed: bool, type_: Any) -> Lines:
        """The statements switching the object (or the list of objects) under struct field `name`, inline."""
        item_type = (type_.of_type if is_non_null_type(type_) else type_).of_type if listed else None
        items_non_null = item_type is not None and is_non_null_type(item_type)

        def statements(v: str, ind: str) -> list[str]:
            x = f"x{self.number()}"
            if not listed:
                return [f"{ind}{x} = {v}.{name}", f"{ind}if {x} is not None:", *lines(x, ind + "    ")]
            y = f"y{self.number()}"
            if items_non_null:
                return [
                    f"{ind}{x} = {v}.{name}",
                    f"{ind}if {x}:",
                    f"{ind}    for {y} in {x}:",
                    *lines(y, ind + "        "),
                ]
            return [
                f"{ind}{x} = {v}.{name}",
                f"{ind}if {x}:",
                f"{ind}    for {y} in {x}:",
                f"{ind}        if {y} is not None:",
                *lines(y, ind + "            "),
            ]

        return statements


def answer_decoder(
    schema: GraphQLSchema, type_: GraphQLObjectType, children: dict[str, dict[str, Any]]
) -> AnswerDecoder:
    """For a v2 case list answer whose cases' selection only copies and derives: its decoder into answers
    (raises Unfit, with the reason, when the selection is not fit)."""
    builder = _Builder(schema)
    try:
        lines, decoded, answer = builder.struct(type_, children)
    except (TypeError, ValueError) as exc:  # msgspec refused a class: the projections serve it
        log.warning("no answer decoder for this selection: %s", exc)
        raise Unfit("msgspec-refused") from exc
    case_list = TypedDict(  # type: ignore[operator]  # noqa: UP013
        "CaseListAnswer", {"cases": list[decoded], "meta": Any}, total=False
    )
    decoder = msgspec.json.Decoder(case_list)
    switch = "\n".join(lines("case", "            "))
    builder.lines.append(
        "def _decode(body, s):\n"
        "    data = _decoder(body)\n"
        "    timestamps, nullable = [], []  # DateTime values, checked together\n"
        "    add_timestamp, add_nullable = timestamps.append, nullable.append\n"
        "    try:\n"
        "        for case in data.get('cases') or ():\n"
        f"{switch}\n"
        "        _timestamps(timestamps, False)\n"
        "        _timestamps(nullable, True)\n"
        "    except Exception as exc:  # a value the schema refuses: the body is decoded as dicts\n"
        "        raise _Invalid(str(exc)) from None\n"
        "    return data\n"
    )
    builder.names.update(
        _decoder=decoder.decode,
        _Invalid=msgspec.ValidationError,
        UNSET=msgspec.UNSET,
        _timestamps=check_timestamps,
    )
    namespace = builder.namespace("<casegraph-answers>", "\n\n")
    return AnswerDecoder(namespace["_decode"], answer)
