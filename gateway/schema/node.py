"""Global object identification: `Node`, global ids, and what `Query.node` can fetch."""

from __future__ import annotations

import base64
import binascii

import strawberry

from gateway.ops.errors import BadUserInput, UpstreamBadResponse

# GraphQL type name -> the upstream key holding its id.
NODE_TYPES = {"Case": "case_id", "LegacyCase": "id"}
MAX_ID = 2**31 - 1  # the largest GraphQL Int: ids `case(id:)` and `legacyCase(id:)` can take


@strawberry.interface(description="An object with a global ID, which `Query.node(id)` fetches again.")
class Node:
    id: strawberry.ID = strawberry.field(description="The global ID: opaque, stable, unique across types.")


def global_id(type_name: str, raw_id: int) -> strawberry.ID:
    if raw_id.__class__ is not int:
        raise UpstreamBadResponse(f"The upstream sent a {type_name} id that is not a number.")
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode())


def parse_global_id(value: str) -> tuple[str, int]:
    """(type name, upstream id) of a global id; BAD_USER_INPUT for anything else."""
    try:
        type_name, _, raw = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
        raw_id = int(raw)
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput(f"{value[:60]!r} is not a global ID of this API.", argument="id") from None
    if type_name not in NODE_TYPES or not 1 <= raw_id <= MAX_ID:
        raise BadUserInput(f"{value[:60]!r} is not a global ID of this API.", argument="id")
    return type_name, raw_id
