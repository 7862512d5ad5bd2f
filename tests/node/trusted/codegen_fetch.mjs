// The id -> document map GraphQL Code Generator's client preset wrote (`persistedDocuments`), used as a frontend
// built with it does: each operation fetched by its `documentId` over GET (no query text), then fetched again
// with the ETag of the first answer in `If-None-Match`, which the gateway answers 304 Not Modified.
// What each request got goes to stdout as JSON for tests/test_trusted_clients.py.
//
// usage: CASEGRAPH_TOKEN=... node trusted/codegen_fetch.mjs http://127.0.0.1:PORT/graphql persisted-documents.json

import { readFileSync } from "node:fs";

const [url, mapPath] = process.argv.slice(2);
const token = process.env.CASEGRAPH_TOKEN;
const documents = JSON.parse(readFileSync(mapPath, "utf8"));
const VARIABLES = { CodegenCases: { n: 3 }, CodegenLegacy: { id: 1002 } };

async function get(documentId, variables, etag) {
  const params = new URLSearchParams({ documentId, variables: JSON.stringify(variables) });
  const headers = { authorization: `Bearer ${token}`, accept: "application/graphql-response+json" };
  if (etag) headers["if-none-match"] = etag;
  const response = await fetch(`${url}?${params}`, { headers });
  const text = await response.text();
  return {
    url: `${url}?${params}`,
    status: response.status,
    etag: response.headers.get("etag"),
    cacheControl: response.headers.get("cache-control"),
    body: text ? JSON.parse(text) : null,
  };
}

const results = {};
for (const [documentId, text] of Object.entries(documents)) {
  const name = text.match(/^query (\w+)/)[1];
  const first = await get(documentId, VARIABLES[name]);
  const again = await get(documentId, VARIABLES[name], first.etag);
  results[name] = { documentId, first, again };
}
console.log(JSON.stringify(results));
