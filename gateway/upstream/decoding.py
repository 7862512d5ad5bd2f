"""Decoding upstream answers for what an operation reads.

An operation plan (`gateway/planning/plan.py`) knows which keys of each kind of upstream object its fields read. From
those keys this module makes msgspec decoders of TypedDicts: the body is still checked as JSON whole, but
only the keys read become Python objects (decoding the four fields a fan-out reads of a 140 KB v2 answer
costs a fraction of parsing it all). The objects are plain dicts and lists, exactly what a full decode gives
for those keys, so execution reads them as before. A body whose shape the decoder does not expect is decoded
whole (`gateway/upstream/http.decode_body`), so execution meets the defect as graphql-core would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypedDict

import msgspec

Decode = Callable[[bytes], Any]
# Every key of every object, as plain dicts and lists (for callers without a plan).
json_decode: Decode = msgspec.json.Decoder().decode
# Keys every decoded object keeps: what tells the types apart (`is_type_of`) and what the loaders index by.
ALWAYS = {"v2.case": ("case_id",), "v1.case": ("id", "case_number")}

# What a decoder keeps of an object: key -> None (the whole value) or (list depth, keys below).
Keys = dict[str, Any]


def merge(into: Keys, key: str, shape: Any) -> None:
    if key not in into:
        into[key] = shape
        return
    old = into[key]
    if old is None or shape is None or old[0] != shape[0]:
        into[key] = None
        return
    for inner_key, inner in shape[1].items():
        merge(old[1], inner_key, inner)


def _freeze(keys: Keys) -> tuple[Any, ...]:
    return tuple(sorted((k, None if v is None else (v[0], _freeze(v[1]))) for k, v in keys.items()))


def _typed(frozen: tuple[Any, ...], name: str) -> Any:
    fields: dict[str, Any] = {}
    for key, shape in frozen:
        if shape is None:
            fields[key] = Any
            continue
        depth, inner = shape
        kind: Any = _typed(inner, f"{name}_{key}") | None
        for _ in range(depth):
            kind = list[kind] | None  # type: ignore[valid-type]
        fields[key] = kind
    return TypedDict(name, fields, total=False)  # type: ignore[operator]


@lru_cache(maxsize=256)
def _decoder(frozen: tuple[Any, ...], container: str) -> Decode:
    """A decoder keeping only `frozen`'s keys of each case, for a body that is one case ("case"), a v2 list
    answer ("v2.list": {"cases": [...], "meta": ...}) or a bare v1 list ("v1.list")."""
    case = _typed(frozen, "Case")
    type_: Any = {
        "case": case,
        "v2.list": TypedDict("CaseList", {"cases": list[case], "meta": Any}, total=False),  # type: ignore[operator]
        "v1.list": list[case],
    }[container]
    return msgspec.json.Decoder(type_).decode


@dataclass(frozen=True)
class Decoders:
    """The decoders of the upstream answers an operation can get (`json_decode` where it reads everything)."""

    v2_list: Decode = json_decode
    v2_case: Decode = json_decode
    v1_list: Decode = json_decode
    v1_case: Decode = json_decode

    @classmethod
    def reading(cls, families: Mapping[str, Keys]) -> Decoders:
        """Decoders keeping, of each kind of upstream object, the keys `families` lists (and ALWAYS's)."""

        def frozen(family: str) -> tuple[Any, ...]:
            keys = dict(families.get(family, {}))
            for key in ALWAYS[family]:
                merge(keys, key, None)
            return _freeze(keys)

        v2, v1 = frozen("v2.case"), frozen("v1.case")
        return cls(
            _decoder(v2, "v2.list"), _decoder(v2, "case"), _decoder(v1, "v1.list"), _decoder(v1, "case")
        )


FULL = Decoders()
