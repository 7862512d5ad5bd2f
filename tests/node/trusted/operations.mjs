// The operations of the Apollo Client proof (tests/test_trusted_clients.py): `generate-persisted-query-manifest`
// reads them from this file to build the manifest the gateway trusts; apollo_client.mjs sends them by id.
import { gql } from "@apollo/client";

export const CASES = gql`
  query TrustedCases($n: Int!) {
    cases(perPage: $n) {
      items {
        caseId
        name
        priority
      }
      pageInfo {
        count
      }
    }
  }
`;

export const ONE_CASE = gql`
  query TrustedCase($id: Int!) {
    case(id: $id) {
      caseId
      name
      ...CaseLinks
    }
  }

  fragment CaseLinks on Case {
    legacyCase {
      legacyId
      caseNumber
    }
  }
`;

export const LEGACY = gql`
  query TrustedLegacy {
    legacyCases(perPage: 3) {
      items {
        legacyId
        caseNumber
      }
    }
  }
`;
