"""Frontend tooling over the schema (tests/node, installed by `make test`):

- @graphql-eslint's Relay rules pass on `schema.graphql`, and its operations rules on the node tests'
  connection queries and those docs/frontend.md and the README show; with the old page info names they fail.
- GraphQL Code Generator, configured as docs/frontend.md shows, types the README's example operations and one
  selecting `createdAt`; its output compiles under `tsc --strict` with `createdAt` exactly `string`.
- docs/frontend.md names every type with an `id` and every type without one, as the schema has them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from graphql import GraphQLObjectType, OperationDefinitionNode, parse

from gateway.planning.executable import schema
from tests.test_client_caches import LISTS
from tests.test_relay_client import NODE, NODE_DIR

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = (ROOT / "docs" / "frontend.md").read_text()
README = (ROOT / "README.md").read_text()
BIN = NODE_DIR / "node_modules" / ".bin"

needs_node = pytest.mark.skipif(
    NODE is None or not (BIN / "graphql-codegen").exists() or not (BIN / "tsc").exists(),
    reason="node or tests/node/node_modules is missing (`make test` runs `npm ci` in tests/node)",
)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def named_operations(documents: list[str]) -> dict[str, str]:
    """Each operation of the documents, by name, as its own document."""
    out = {}
    for document in documents:
        for definition in parse(document).definitions:
            assert isinstance(definition, OperationDefinitionNode) and definition.name, document
            assert definition.loc is not None
            out[definition.name.value] = document[definition.loc.start : definition.loc.end]
    return out


def lint(schema_path: Path, operations: dict[str, str]) -> dict[str, list[dict[str, object]]]:
    run = subprocess.run(
        [NODE, "lint.mjs", str(schema_path)],  # type: ignore[list-item]
        cwd=NODE_DIR,
        input=json.dumps(operations).encode(),
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def connection_queries() -> dict[str, str]:
    """The connection queries the node tests send (page_all.mjs's are lint.mjs's own), the README's and
    docs/frontend.md's."""
    shown = [b for b in blocks(README, "graphql") + blocks(FRONTEND, "graphql") if "Connection(" in b]
    queries = named_operations(shown)
    assert {"Feed", "UserCases", "TagCases"} <= set(queries)
    return {**queries, **named_operations([entry["query"] for entry in LISTS])}  # type: ignore[misc]


@needs_node
def test_relay_rules_pass_on_the_schema_and_the_connection_queries():
    report = lint(ROOT / "schema.graphql", connection_queries())
    assert {"schema.graphql", "operations/CasesWindow.graphql", "operations/AllCases.graphql"} <= set(report)
    assert len(report) == 1 + 2 + 3 + len(LISTS)
    assert {name: messages for name, messages in report.items() if messages} == {}


@needs_node
def test_relay_rules_refuse_the_old_page_info_names(tmp_path):
    """The check can fail: the schema as it was (connections' page info `CursorPageInfo`, the page-number lists'
    `PageInfo`) breaks relay-connection-types and relay-page-info."""
    old = re.sub(r"\bPageInfo\b", "CursorPageInfo", (ROOT / "schema.graphql").read_text())
    old = re.sub(r"\bPageNumberInfo\b", "PageInfo", old)
    (tmp_path / "schema.graphql").write_text(old)
    report = lint(tmp_path / "schema.graphql", {})
    rules = {message["rule"] for message in report["schema.graphql"]}
    assert rules == {"@graphql-eslint/relay-connection-types", "@graphql-eslint/relay-page-info"}


CREATED_AT = """\
query CaseCreated($id: Int!) {
  case(id: $id) { id caseId createdAt updatedAt legacyCase { id createdOn createdAt } }
}
"""

USE = """\
import type { CaseCreatedQuery, FeedQuery, OpenHighPriorityCasesQuery } from "./gql/graphql";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Case = NonNullable<CaseCreatedQuery["case"]>;

export const createdAtIsString: Equal<Case["createdAt"], string> = true;
export const updatedAtIsStringOrNull: Equal<Case["updatedAt"], string | null> = true;
export const createdOnIsStringOrNull: Equal<NonNullable<Case["legacyCase"]>["createdOn"], string | null> = true;

export function opened(data: CaseCreatedQuery): Date | null {
  return data.case ? new Date(data.case.createdAt) : null;
}

export function ids(data: FeedQuery): number[] {
  return data.casesConnection?.edges.map((edge) => edge.node.caseId) ?? [];
}

export function pages(data: OpenHighPriorityCasesQuery): number {
  return data.cases?.pageInfo.pages ?? 0;
}
"""

WRONG = """\
import type { CaseCreatedQuery } from "./gql/graphql";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export const createdAtIsUnknown: Equal<NonNullable<CaseCreatedQuery["case"]>["createdAt"], unknown> = true;
"""


@pytest.fixture
def project() -> Iterator[Path]:
    """A frontend project: docs/frontend.md's codegen.ts, the schema, the README's operations and one selecting
    `createdAt`. Inside tests/node, so that it finds the installed packages."""
    path = Path(tempfile.mkdtemp(prefix=".codegen-", dir=NODE_DIR))
    try:
        (config,) = [b for b in blocks(FRONTEND, "ts") if "CodegenConfig" in b]
        (path / "codegen.ts").write_text(config)
        shutil.copy(ROOT / "schema.graphql", path / "schema.graphql")
        (path / "src").mkdir()
        for name, text in named_operations(blocks(README, "graphql")).items():
            (path / "src" / f"{name}.graphql").write_text(text)
        (path / "src" / "CaseCreated.graphql").write_text(CREATED_AT)
        yield path
    finally:
        shutil.rmtree(path)


def tsc(project: Path, *files: str) -> subprocess.CompletedProcess[bytes]:
    flags = ["--strict", "--noEmit", "--skipLibCheck", "--target", "es2022"]
    flags += ["--module", "esnext", "--moduleResolution", "bundler"]  # as a bundled frontend compiles
    return subprocess.run(
        [str(BIN / "tsc"), *flags, *files], cwd=project, capture_output=True, timeout=180, check=False
    )


@needs_node
def test_generated_types_compile_under_strict_with_created_at_a_string(project):
    names = named_operations(blocks(README, "graphql"))
    assert len(names) == len(blocks(README, "graphql")) >= 4  # every README example is named
    generate = subprocess.run(
        [str(BIN / "graphql-codegen"), "--config", "codegen.ts"],
        cwd=project,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert generate.returncode == 0, (generate.stdout + generate.stderr).decode()[-3000:]
    assert b"skipped" not in generate.stdout + generate.stderr  # the client preset skips anonymous operations
    generated = (project / "src" / "gql" / "graphql.ts").read_text()
    for name in [*names, "CaseCreated"]:
        assert f"export type {name}Query = " in generated, name
    (project / "src" / "use.ts").write_text(USE)
    compiled = tsc(project, "src/use.ts")
    assert compiled.returncode == 0, compiled.stdout.decode()[-3000:]
    # and tsc does check: `createdAt` is not `unknown`
    (project / "src" / "wrong.ts").write_text(WRONG)
    wrong = tsc(project, "src/wrong.ts")
    assert wrong.returncode != 0 and b"wrong.ts" in wrong.stdout


def test_the_frontend_docs_name_every_type_with_and_without_an_id():
    types = {
        name: type_
        for name, type_ in schema._schema.type_map.items()
        if isinstance(type_, GraphQLObjectType) and not name.startswith("__") and name != "Query"
    }
    with_id = {name for name, type_ in types.items() if "id" in type_.fields}
    table = FRONTEND.split("## One object per")[1].split("Types without an `id`")[0]
    listed = {
        name for row in re.findall(r"^\| (.*?) \|", table, re.M) for name in re.findall(r"`(\w+)`", row)
    }
    assert listed == with_id
    (urql,) = [b for b in blocks(FRONTEND, "ts") if "cacheExchange" in b]
    embedded = set(re.findall(r"(\w+): embedded", urql))
    assert embedded == set(types) - with_id
