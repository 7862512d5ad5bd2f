"""Global object identification: `Node`, global ids, and what `Query.node` can fetch."""

from __future__ import annotations

import base64
import binascii

import strawberry

from gateway.errors import BadUserInput

# GraphQL type name -> the upstream key holding its id.
NODE_TYPES = {"Case": "case_id", "LegacyCase": "id"}


@strawberry.interface(description="An object with a global ID, which `Query.node(id)` fetches again.")
class Node:
    id: strawberry.ID = strawberry.field(description="The global ID: opaque, stable, unique across types.")


def global_id(type_name: str, raw_id: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode())


def parse_global_id(value: str) -> tuple[str, int]:
    """(type name, upstream id) of a global id; BAD_USER_INPUT for anything else."""
    try:
        type_name, _, raw = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
        raw_id = int(raw)
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput(f"{value[:60]!r} is not a global ID of this API.", argument="id") from None
    if type_name not in NODE_TYPES or raw_id < 1:
        raise BadUserInput(f"{value[:60]!r} is not a global ID of this API.", argument="id")
    return type_name, raw_id
