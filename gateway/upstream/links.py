"""How a v1 case and a v2 case point at each other (the design's "How the two are linked").

- v1 -> v2: the reference whose label in `case_type.reference_labels` is the configured label
  (default "Tines case") holds the v2 `case_id`.
- v2 -> v1: the v2 `metadata` key configured (default "trackops_case_id") holds the v1 `id`.
"""

from __future__ import annotations

from typing import Any

# The upstream keys of a v1 case that `v2_id_of` (and `LegacyCase.references`) read.
REFERENCES = ("case_type", "reference_value_1", "reference_value_2", "reference_value_3")


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


def reference_labels(legacy_case: dict[str, Any]) -> list[Any]:
    """The labels of a v1 case's references (`case_type.reference_labels`); none when the upstream sent
    something else (the `caseType` field itself reports that)."""
    case_type = legacy_case.get("case_type")
    labels = case_type.get("reference_labels") if isinstance(case_type, dict) else None
    return labels if isinstance(labels, list) else []


def v2_id_of(legacy_case: dict[str, Any], label: str) -> int | None:
    """The v2 case id a v1 case points at, or None when it has no such reference."""
    for position, name in enumerate(reference_labels(legacy_case), start=1):
        if name == label:
            return _as_id(legacy_case.get(f"reference_value_{position}"))
    return None


def v1_id_of(case: dict[str, Any], metadata_key: str) -> int | None:
    """The v1 case id a v2 case points back at, or None."""
    metadata = case.get("metadata")
    return _as_id(metadata.get(metadata_key)) if isinstance(metadata, dict) else None
