"""How a v1 case and a v2 case point at each other (the design's "How the two are linked").

- v1 -> v2: the reference whose label in `case_type.reference_labels` is the configured label
  (default "Tines case") holds the v2 `case_id`.
- v2 -> v1: the v2 `metadata` key configured (default "trackops_case_id") holds the v1 `id`.
"""

from __future__ import annotations

from typing import Any

from gateway.ops.errors import UpstreamBadResponse

# The upstream keys of a v1 case that `v2_id_of` (and `LegacyCase.references`) read.
REFERENCES = ("case_type", "reference_value_1", "reference_value_2", "reference_value_3")


MAX_ID = 2**31 - 1  # ids are GraphQL Ints


def _as_id(value: Any) -> int | None:
    """The case id a link holds: None for no link (null, or a text that is no id); an object, a list or an id
    past 32 bits is the upstream's error (UPSTREAM_BAD_RESPONSE), not "no link"."""
    if isinstance(value, dict | list):
        raise UpstreamBadResponse("The upstream sent a link to a case that is not an id.")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        if value > MAX_ID:
            raise UpstreamBadResponse("The upstream sent a link to a case id out of range.")
        return value if value > 0 else None
    return None


def reference_labels(legacy_case: dict[str, Any]) -> list[str | None]:
    """The labels of a v1 case's references (`case_type.reference_labels`, strings or nulls); none without a
    case type. A `case_type` or labels of another JSON type than the reference's is the upstream's error
    (UPSTREAM_BAD_RESPONSE on the field reading them), never "no case type"."""
    case_type = legacy_case.get("case_type")
    if case_type is None:
        return []
    if not isinstance(case_type, dict):
        raise UpstreamBadResponse("The v1 upstream sent a case type that is not an object.")
    labels = case_type.get("reference_labels")
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(label is None or isinstance(label, str) for label in labels):
        raise UpstreamBadResponse("The v1 upstream sent reference labels that are not a list of strings.")
    return labels


def v2_id_of(legacy_case: dict[str, Any], label: str) -> int | None:
    """The v2 case id a v1 case points at, or None when it has no such reference."""
    for position, name in enumerate(reference_labels(legacy_case), start=1):
        if name == label:
            return _as_id(legacy_case.get(f"reference_value_{position}"))
    return None


def v1_id_of(case: dict[str, Any], metadata_key: str) -> int | None:
    """The v1 case id a v2 case points back at, or None."""
    metadata = case.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise UpstreamBadResponse("The v2 upstream sent metadata that is not an object.")
    return _as_id(metadata.get(metadata_key))
