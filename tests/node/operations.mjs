// The connection queries page_all.mjs sends, as text: lint.mjs checks them against the schema (with
// @graphql-eslint's operations rules) beside the ones tests/test_client_caches.py sends.

// A list's connection query: a window and the page info relayStylePagination reads.
const connectionQuery = (name, field, nodeFields) => `
  query ${name}($first: Int, $after: String, $last: Int, $before: String) {
    ${field}(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      edges { cursor node { id ${nodeFields} } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
`;

export const PAGE_ALL = {
  CasesWindow: connectionQuery("CasesWindow", "casesConnection", "caseId name"),
  LegacyCasesWindow: connectionQuery("LegacyCasesWindow", "legacyCasesConnection", "legacyId caseNumber"),
};
