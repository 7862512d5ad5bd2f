// Normalized client caches against casegraph: Apollo Client's InMemoryCache and urql's graphcache each page
// through the cursor connections the spec on stdin names, one client (one cache) for all of them, then read
// every list back from their cache, as a screen showing them would. What each cache shows goes to stdout as
// JSON; tests/test_client_caches.py compares it with the upstream's values, field by field.
//
// Configuration: only what docs/frontend.md recommends: Apollo's relayStylePagination and graphcache's
// relayPagination on the root connections, graphcache's `keys` naming the types without an `id` (default
// keys otherwise: `__typename` and `id`).
//
// usage: CASEGRAPH_TOKEN=... node caches.mjs http://127.0.0.1:PORT/graphql < spec.json
//   spec: {"lists": [{"name": "v2", "field": "casesConnection", "query": "...", "size": 50, "variables": {}}]}
//   each query takes $first and $after (and the list's own variables) and selects edges and pageInfo.

import { readFileSync } from "node:fs";

import { buildSchema, isObjectType } from "graphql";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { relayStylePagination } from "@apollo/client/utilities";
import { Client, fetchExchange } from "@urql/core";
import { cacheExchange } from "@urql/exchange-graphcache";
import { relayPagination } from "@urql/exchange-graphcache/extras";

const [url] = process.argv.slice(2);
const headers = { authorization: `Bearer ${process.env.CASEGRAPH_TOKEN}` };
const { lists } = JSON.parse(readFileSync(0, "utf8"));

// As a browser does: a request sent on a kept-alive connection that the server closed meanwhile (uvicorn
// closes one idle for 5 s; normalizing a large window can keep this process busy that long) is sent again.
async function fetchOnce(input, init) {
  try {
    return await fetch(input, init);
  } catch (error) {
    if (error?.cause?.code !== "UND_ERR_SOCKET") throw error;
    return fetch(input, init);
  }
}

function apolloClient() {
  return new ApolloClient({
    link: new HttpLink({ uri: url, headers, fetch: fetchOnce }),
    cache: new InMemoryCache({
      typePolicies: {
        Query: {
          fields: {
            casesConnection: relayStylePagination(["filter", "order", "teamId"]),
            legacyCasesConnection: relayStylePagination(["filter"]),
          },
        },
      },
    }),
  });
}

// graphcache embeds objects without an `id` in their parent, and says so for each unless told: these keys
// tell it (every object type of the schema that has no `id`, as docs/frontend.md shows).
const schema = buildSchema(readFileSync(new URL("../../schema.graphql", import.meta.url), "utf8"));
const embedded = Object.fromEntries(
  Object.values(schema.getTypeMap())
    .filter((type) => isObjectType(type) && !type.name.startsWith("__") && !("id" in type.getFields()))
    .map((type) => [type.name, () => null]),
);

function urqlClient() {
  return new Client({
    url,
    fetchOptions: { headers },
    fetch: fetchOnce,
    preferGetMethod: false,
    exchanges: [
      cacheExchange({
        keys: embedded,
        resolvers: { Query: { casesConnection: relayPagination(), legacyCasesConnection: relayPagination() } },
      }),
      fetchExchange,
    ],
  });
}

// Each client: page(list, variables) asks the network for one window and answers the list it now holds;
// read(list, variables) answers it from the cache alone.
const CLIENTS = {
  apollo() {
    const client = apolloClient();
    return {
      async page(list, variables) {
        const result = await client.query({ query: list.doc, variables, fetchPolicy: "network-only" });
        if (result.error) throw result.error;
        return result.data[list.field];
      },
      read(list, variables) {
        const diff = client.cache.diff({ query: list.doc, variables, returnPartialData: true, optimistic: false });
        if (diff.missing) console.error(JSON.stringify(diff.missing).slice(0, 3000));
        return diff.result[list.field];
      },
      stop: () => client.stop(),
    };
  },
  urql() {
    const client = urqlClient();
    const run = async (list, variables, requestPolicy) => {
      const result = await client.query(list.doc, variables, { requestPolicy }).toPromise();
      if (result.error) throw result.error;
      return result.data[list.field];
    };
    return {
      page: (list, variables) => run(list, variables, "network-only"),
      read: (list, variables) => run(list, variables, "cache-only"),
      stop: () => {},
    };
  },
};

const answer = {};
for (const [name, make] of Object.entries(CLIENTS)) {
  const client = make();
  const last = {};
  const requests = {};
  for (const list of lists) {
    list.doc = gql(list.query);
    let variables = { ...list.variables, first: list.size };
    requests[list.name] = 0;
    for (;;) {
      const connection = await client.page(list, variables);
      requests[list.name] += 1;
      if (!connection.pageInfo.hasNextPage) break;
      variables = { ...list.variables, first: list.size, after: connection.pageInfo.endCursor };
    }
    last[list.name] = variables;
  }
  // every list read back once all are in the one cache: a later list's objects overwrite earlier ones
  const shown = {};
  for (const list of lists) {
    shown[list.name] = (await client.read(list, last[list.name])).edges.map((edge) => edge.node);
  }
  client.stop();
  answer[name] = { shown, requests };
}
process.stdout.write(JSON.stringify(answer));
