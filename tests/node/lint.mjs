// @graphql-eslint over casegraph's schema and operations: the schema with its four Relay rules (the
// `schema-relay` config: relay-arguments, relay-connection-types, relay-edge-types, relay-page-info, with
// their default options but two of relay-edge-types, see below); page_all.mjs's queries (operations.mjs)
// and each operation on stdin with the `operations-recommended` config (graphql-js validation against the
// schema, naming, `id` selected wherever a type has one...). The messages, per file, go to stdout as JSON
// (tests/test_client_tooling.py).
//
// usage: node lint.mjs /path/to/schema.graphql < operations.json   ({"OperationName": "query ...", ...})

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import graphqlPlugin from "@graphql-eslint/eslint-plugin";
import { ESLint } from "eslint";

import { PAGE_ALL } from "./operations.mjs";

// ESLint lints files under its working directory, and the operations rules read the documents from disk:
// the schema and the operations are written to a directory of their own.
const cwd = mkdtempSync(path.join(tmpdir(), "casegraph-lint-"));
const schema = "schema.graphql";
const schemaPath = path.join(cwd, schema);
copyFileSync(path.resolve(process.argv[2]), schemaPath);
mkdirSync(path.join(cwd, "operations"));
const operations = { ...PAGE_ALL, ...JSON.parse(readFileSync(0, "utf8")) };
for (const [name, text] of Object.entries(operations)) {
  writeFileSync(path.join(cwd, "operations", `${name}.graphql`), text);
}

// One graphql-config for every file: graphql-eslint keeps the first it loads for the whole process.
const language = {
  languageOptions: {
    parser: graphqlPlugin.parser,
    parserOptions: { graphQLConfig: { schema: schemaPath, documents: "operations/*.graphql" } },
  },
  plugins: { "@graphql-eslint": graphqlPlugin },
};

process.chdir(cwd); // graphql-config resolves the documents glob from the working directory
const eslint = new ESLint({
  cwd,
  overrideConfigFile: true,
  overrideConfig: [
    {
      files: [schema],
      ...language,
      rules: {
        ...graphqlPlugin.configs["flat/schema-relay"].rules,
        // Two of relay-edge-types' defaults go beyond the cursor connections specification: that every list
        // in the schema be a list of edges (here a case has lists of tags, assignees...), and that every
        // edge's node implement `Node` (refetchable by `node(id)`: an activity or a record cannot be fetched
        // alone; they have an `id` unique within their type, which is what client caches key them by).
        "@graphql-eslint/relay-edge-types": [
          "error",
          { withEdgeSuffix: true, shouldImplementNode: false, listTypeCanWrapOnlyEdgeType: false },
        ],
      },
    },
    {
      files: ["operations/*.graphql"],
      ...language,
      rules: graphqlPlugin.configs["flat/operations-recommended"].rules,
    },
  ],
});

const results = await eslint.lintFiles([schema, "operations/*.graphql"]);
const report = {};
for (const result of results) {
  report[path.relative(cwd, result.filePath)] = result.messages.map((m) => ({
    rule: m.ruleId,
    message: m.message,
    line: m.line,
  }));
}
rmSync(cwd, { recursive: true });
process.stdout.write(JSON.stringify(report));
