// Runs every graphql-http server audit against a live GraphQL endpoint and prints one JSON line per audit:
// {"id", "name", "status" (ok, error: a MUST failed, warn: a SHOULD, notice: a MAY), "reason", "http"}.
// Usage: node audit.mjs http://127.0.0.1:8000/graphql
import { serverAudits } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node audit.mjs <graphql url>");
  process.exit(2);
}
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  const response = result.response;
  console.log(
    JSON.stringify({
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.reason ?? null,
      http: response ? { status: response.status, contentType: response.headers.get("content-type") } : null,
    }),
  );
}
