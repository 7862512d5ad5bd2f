// Pages through casegraph's cursor connections with Apollo Client and relayStylePagination, as an
// infinite-scroll list would: a first window, then fetchMore with the cursor the client holds, until the
// page info says there is no more, forward (first/after) and backward (last/before). The ids of the list
// the client ends with (its cache's merged edges) go to stdout as JSON for tests/test_relay_client.py.
//
// usage: CASEGRAPH_TOKEN=... node page_all.mjs http://127.0.0.1:PORT/graphql

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { relayStylePagination } from "@apollo/client/utilities";
import { filter, firstValueFrom } from "rxjs";

import { PAGE_ALL } from "./operations.mjs";

const [url] = process.argv.slice(2);
const token = process.env.CASEGRAPH_TOKEN;

const LISTS = {
  v2: { field: "casesConnection", size: 7, key: "caseId", query: gql(PAGE_ALL.CasesWindow) },
  v1: { field: "legacyCasesConnection", size: 11, key: "legacyId", query: gql(PAGE_ALL.LegacyCasesWindow) },
};

function newClient() {
  return new ApolloClient({
    link: new HttpLink({ uri: url, headers: { authorization: `Bearer ${token}` } }),
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

async function pageAll(list, forward) {
  const client = newClient(); // a fresh cache for each run
  const window = (cursor) =>
    forward ? { first: list.size, after: cursor } : { last: list.size, before: cursor };
  const observable = client.watchQuery({ query: list.query, variables: window(undefined) });
  const subscription = observable.subscribe({});
  let result = await firstValueFrom(observable.pipe(filter((r) => !r.loading)));
  let requests = 1;
  for (;;) {
    if (result.error) throw result.error;
    const info = result.data[list.field].pageInfo;
    if (forward ? !info.hasNextPage : !info.hasPreviousPage) break;
    // the merged list comes as the query's next result, once the cache has merged the new window in
    const held = result.data[list.field].edges.length;
    const merged = firstValueFrom(
      observable.pipe(filter((r) => r.error || (!r.loading && r.data[list.field].edges.length > held))),
    );
    await observable.fetchMore({ variables: window(forward ? info.endCursor : info.startCursor) });
    requests += 1;
    result = await merged;
  }
  subscription.unsubscribe();
  const connection = result.data[list.field];
  client.stop();
  return { ids: connection.edges.map((edge) => edge.node[list.key]), totalCount: connection.totalCount, requests };
}

const answer = {};
for (const [name, list] of Object.entries(LISTS)) {
  answer[name] = { forward: await pageAll(list, true), backward: await pageAll(list, false) };
}
process.stdout.write(JSON.stringify(answer));
