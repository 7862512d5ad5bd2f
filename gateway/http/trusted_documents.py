"""Trusted documents: the operations a frontend was built with, loaded at start and run by id.

`TRUSTED_DOCUMENTS` names a manifest file, or a directory whose `*.json` files are all manifests, in the formats
frontend toolchains write:

- Apollo's persisted query manifest (`@apollo/generate-persisted-query-manifest`):
  `{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "name", "type", "body"}]}`;
- the id -> document map of GraphQL Code Generator's client preset (`persistedDocuments`) and of Relay:
  `{"<id>": "<document>"}`.

Every document is parsed, validated against the schema and planned for each of its operations at start
(`load`), and kept here, apart from the bounded cache of other documents (`gateway/planning/plan.py`): a trusted request
never parses, however many documents the manifests hold. A document that does not parse or validate, or whose
id says it is a SHA-256 (`sha256:<hex>`, or 64 hexadecimal digits) and is not its body's, stops the gateway
with a `ManifestError` naming it (`casegraph serve` exits 2). Other ids (Relay's MD5, the client preset's SHA-1
by default, names) are taken as they are.

A request names a trusted document by
- `documentId` (the GraphQL-over-HTTP draft's persisted documents): `sha256:<hex>` finds any document by its
  body's SHA-256, a bare id the document the manifest lists under it;
- `extensions.persistedQuery.sha256Hash` (the APQ form Apollo Client's persisted-query-lists link sends);
- its text, when it is exactly a listed body (GraphiQL and tools that send text).

`TRUSTED_DOCUMENTS_MODE` says what becomes of the other documents: `off` they run, `log` they run and are
counted per operation name (`casegraph_documents_total{trusted="false"}`) and logged once each, `enforce` they
are refused (400, `DOCUMENT_NOT_TRUSTED`) before anything runs, and APQ registers nothing. Under `enforce`
an introspection-only operation (`__schema`, `__type`, `__typename` at its root) still runs when INTROSPECTION
is on, so that GraphiQL (GRAPHIQL) shows the schema on a gateway that allows both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cachetools import LRUCache
from graphql import FieldNode, GraphQLError, OperationType, parse, specified_rules

from gateway.http.graphql_http import Refusal
from gateway.ops.config import ConfigError
from gateway.planning.documents import Document

log = logging.getLogger("gateway.trusted")

Mode = Literal["off", "log", "enforce"]
APOLLO_FORMAT = "apollo-persisted-query-manifest"
NOT_TRUSTED = "DOCUMENT_NOT_TRUSTED"


def not_trusted(message: str) -> Refusal:
    """The one refusal of TRUSTED_DOCUMENTS_MODE=enforce: 400 under both media types."""
    return Refusal(
        400, NOT_TRUSTED, f"{message} This gateway runs only trusted documents: send a listed one's id."
    )


NOT_FOUND = "PERSISTED_DOCUMENT_NOT_FOUND"
SHA256_PREFIX = "sha256:"
MAX_ID_LENGTH = 256
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
INTROSPECTION_ROOTS = frozenset({"__schema", "__type", "__typename"})
MAX_LOGGED = 10_000  # untrusted documents remembered as logged (log mode)


class ManifestError(ConfigError):
    """A manifest the gateway cannot trust: the message names the file and the document."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Trusted:
    """One listed document: its manifest id and operation name, its text, parsed, validated and planned."""

    id: str
    name: str | None
    body: str
    sha256: str
    document: Document


class TrustedDocuments:
    """The listed documents by id, by SHA-256 and by text; never evicted."""

    def __init__(
        self, documents: Iterable[Trusted] = (), mode: Mode = "off", source: str | None = None
    ) -> None:
        self.mode: Mode = mode
        self.source = source
        self.by_id: dict[str, Trusted] = {}
        self.by_sha256: dict[str, Trusted] = {}
        self.by_body: dict[str, Trusted] = {}
        for trusted in documents:
            self.by_id[trusted.id] = trusted
            self.by_sha256.setdefault(trusted.sha256, trusted)
            self.by_body.setdefault(trusted.body, trusted)
        self._logged: LRUCache[tuple[str | None, str], bool] = LRUCache(MAX_LOGGED)

    def __len__(self) -> int:
        return len(self.by_id)

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"

    def find(self, document_id: str) -> Trusted | None:
        """The document a `documentId` names: `sha256:<hex>` by its body's hash, else by its manifest id."""
        if document_id.startswith(SHA256_PREFIX):
            return self.by_sha256.get(document_id[len(SHA256_PREFIX) :].lower())
        return self.by_id.get(document_id)

    def report(self) -> dict[str, Any]:
        return {"mode": self.mode, "documents": len(self), "source": self.source}

    def first_run(self, operation: str | None, text: str) -> bool:
        """Whether this untrusted document (operation name and text) is seen for the first time (log mode)."""
        key = (operation, sha256_hex(text))
        if key in self._logged:
            return False
        self._logged[key] = True
        return True


def only_introspection(document: Document, operation_name: str | None) -> bool:
    """Whether the operation is a query selecting only introspection fields at its root (no fragments there)."""
    operation = document.operation(operation_name)
    if operation is None or operation.operation != OperationType.QUERY:
        return False
    selections = operation.selection_set.selections
    return all(isinstance(s, FieldNode) and s.name.value in INTROSPECTION_ROOTS for s in selections)


# --- loading -----------------------------------------------------------------------------------------------


def manifest_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise ManifestError(f"TRUSTED_DOCUMENTS: no *.json manifest in the directory {path}")
        return files
    if not path.is_file():
        raise ManifestError(f"TRUSTED_DOCUMENTS: {path} is neither a file nor a directory")
    return [path]


def entries(path: Path) -> list[tuple[str, str | None, str]]:
    """A manifest's (id, name, body) entries, in either format."""
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"TRUSTED_DOCUMENTS: {path} is not a readable JSON file ({exc})") from None
    if not isinstance(content, dict):
        raise ManifestError(f"TRUSTED_DOCUMENTS: {path} is not a JSON object")
    if "format" in content:
        if content.get("format") != APOLLO_FORMAT or content.get("version") != 1:
            raise ManifestError(
                f"TRUSTED_DOCUMENTS: {path}: unknown manifest format {content.get('format')!r} version "
                f"{content.get('version')!r} (known: {APOLLO_FORMAT} version 1, or an id -> document map)"
            )
        operations = content.get("operations")
        if not isinstance(operations, list):
            raise ManifestError(f"TRUSTED_DOCUMENTS: {path}: `operations` is not a list")
        found = []
        for n, op in enumerate(operations):
            if not (
                isinstance(op, dict) and isinstance(op.get("id"), str) and isinstance(op.get("body"), str)
            ):
                raise ManifestError(f"TRUSTED_DOCUMENTS: {path}: operation {n} has no string `id` and `body`")
            name = op.get("name")
            found.append((op["id"], name if isinstance(name, str) else None, op["body"]))
        return found
    found = []
    for key, body in content.items():
        if not isinstance(body, str):
            raise ManifestError(f"TRUSTED_DOCUMENTS: {path}: the document of id {key[:80]!r} is not a string")
        found.append((key, None, body))
    return found


def trusted(path: Path, id_: str, name: str | None, body: str, schema: Any, answers_allowed: bool) -> Trusted:
    """One entry parsed, validated and planned; `ManifestError` naming it when it cannot be trusted."""
    what = f"TRUSTED_DOCUMENTS: {path}: document {id_[:80]!r}" + (f" ({name})" if name else "")
    if not id_ or len(id_) > MAX_ID_LENGTH:
        raise ManifestError(f"{what}: an id must have 1 to {MAX_ID_LENGTH} characters")
    digest = sha256_hex(body)
    claimed = id_[len(SHA256_PREFIX) :] if id_.startswith(SHA256_PREFIX) else id_
    if (id_.startswith(SHA256_PREFIX) or _SHA256.fullmatch(id_)) and claimed.lower() != digest:
        raise ManifestError(f"{what}: the id is not the SHA-256 of the document ({digest})")
    try:
        document = Document(parse(body, no_location=True))
    except GraphQLError as exc:
        raise ManifestError(f"{what} does not parse: {exc.message}") from None
    errors = document.validate(schema, tuple(specified_rules))  # the rules every request validates with
    if errors:
        raise ManifestError(f"{what} does not validate: {errors[0].message}")
    if not document.operations:
        raise ManifestError(f"{what} has no operation")
    names = [op.name.value if op.name else None for op in document.operations]
    for op_name in [*names, None] if len(names) == 1 else names:  # planned as requests will name them
        document.plan(schema, op_name, None, answers_allowed)
    return Trusted(id_, name or names[0], body, digest, document)


def load(source: str | None, mode: Mode, schema: Any, answers_allowed: bool) -> TrustedDocuments:
    """The trusted documents of `TRUSTED_DOCUMENTS` (none when unset) for a graphql-core `schema`."""
    if not source:
        return TrustedDocuments((), mode)
    documents: dict[str, Trusted] = {}
    for path in manifest_files(Path(source)):
        for id_, name, body in entries(path):
            known = documents.get(id_)
            if known is not None:
                if known.body != body:
                    raise ManifestError(
                        f"TRUSTED_DOCUMENTS: {path}: id {id_[:80]!r} names two different documents"
                    )
                continue
            documents[id_] = trusted(path, id_, name, body, schema, answers_allowed)
    log.info("trusted documents: %d from %s, mode %s", len(documents), source, mode)
    return TrustedDocuments(documents.values(), mode, source)
