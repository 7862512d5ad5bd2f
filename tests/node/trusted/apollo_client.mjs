// Apollo Client 4 with @apollo/persisted-query-lists against a gateway in TRUSTED_DOCUMENTS_MODE=enforce, as a
// production frontend runs: the ids come from the manifest `generate-persisted-query-manifest` built from
// operations.mjs, and every request carries an id, never the query text. The same client then sends one query
// as text (context `raw`: past the persisted-query link), which the gateway must refuse.
// Every request's method, URL and body, and every answer, go to stdout as JSON for tests/test_trusted_clients.py.
//
// usage: CASEGRAPH_TOKEN=... node trusted/apollo_client.mjs http://127.0.0.1:PORT/graphql manifest.json [get]

import { readFileSync } from "node:fs";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { generatePersistedQueryIdsFromManifest } from "@apollo/persisted-query-lists";

import { CASES, LEGACY, ONE_CASE } from "./operations.mjs";

const [url, manifestPath, method] = process.argv.slice(2);
const token = process.env.CASEGRAPH_TOKEN;
const sent = [];

// fetch, recording what goes on the wire
async function recordingFetch(input, init = {}) {
  sent.push({ method: init.method ?? "GET", url: String(input), body: init.body ?? null });
  return fetch(input, init);
}

const http = new HttpLink({ uri: url, headers: { authorization: `Bearer ${token}` }, fetch: recordingFetch });
const persisted = new PersistedQueryLink({
  ...generatePersistedQueryIdsFromManifest({
    loadManifest: () => JSON.parse(readFileSync(manifestPath, "utf8")),
  }),
  useGETForHashedQueries: method === "get",
});
const client = new ApolloClient({
  // operations asked with context `raw` go as text, the others by id
  link: ApolloLink.split((operation) => operation.getContext().raw === true, http, persisted.concat(http)),
  cache: new InMemoryCache(),
});

const UNLISTED = gql`
  query Unlisted {
    cases(perPage: 1) {
      items {
        caseId
      }
    }
  }
`;

async function run(query, variables, context) {
  try {
    const result = await client.query({ query, variables, context, fetchPolicy: "no-cache" });
    return { data: result.data ?? null, error: result.error ? String(result.error) : null };
  } catch (error) {
    return { data: null, error: String(error), errors: error.errors ?? null };
  }
}

const answers = {
  cases: await run(CASES, { n: 4 }),
  oneCase: await run(ONE_CASE, { id: 3 }),
  legacy: await run(LEGACY, {}),
  unlisted: await run(UNLISTED, {}, { raw: true }),
};
console.log(JSON.stringify({ answers, sent }));
