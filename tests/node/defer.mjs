// Runs a query with @defer through Apollo Client 4 and its GraphQL17Alpha9Handler (the incremental format
// graphql-core 3.3 answers in), as a page would: the v1 cases first, each one's v2 case when the gateway has
// it. Every result the query's observable emits goes to stdout as JSON, with how many v2 list requests the
// demo upstream had answered at that moment (its request log), for tests/test_incremental.py.
//
// usage: CASEGRAPH_TOKEN=... node defer.mjs http://127.0.0.1:PORT/graphql http://127.0.0.1:UPSTREAM

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQL17Alpha9Handler } from "@apollo/client/incremental";
import { filter, firstValueFrom } from "rxjs";

const [url, upstream] = process.argv.slice(2);
const token = process.env.CASEGRAPH_TOKEN;

const QUERY = gql(`
  query DeferredCases {
    legacyCases(perPage: 20) {
      items {
        legacyId
        caseNumber
        ... @defer { case { caseId name status } }
      }
    }
  }
`);

async function v2Answered() {
  const log = await (await fetch(`${upstream}/_demo/requests`)).json();
  return log.requests.filter((request) => request.path === "/api/v2/cases").length;
}

const client = new ApolloClient({
  link: new HttpLink({ uri: url, headers: { authorization: `Bearer ${token}` } }),
  cache: new InMemoryCache(),
  incrementalHandler: new GraphQL17Alpha9Handler(),
});

const emitted = [];
const observable = client.watchQuery({ query: QUERY, errorPolicy: "all" });
const recorded = [];
const subscription = observable.subscribe((result) => {
  if (result.loading && !result.data) return; // the loading state before any data
  const items = result.data?.legacyCases?.items ?? [];
  // the upstream's log is read at once, before the next part can be handled
  const index = recorded.length;
  recorded.push(
    v2Answered().then((v2) => {
      emitted[index] = {
        dataState: result.dataState,
        loading: result.loading,
        items: items.length,
        withCase: items.filter((item) => item.case).length,
        errors: (result.error?.errors ?? []).map((error) => [error.path, error.extensions?.code]),
        v2Answered: v2,
      };
    }),
  );
});
await firstValueFrom(observable.pipe(filter((result) => result.dataState === "complete")));
subscription.unsubscribe();
await Promise.all(recorded);
client.stop();
process.stdout.write(JSON.stringify(emitted));
