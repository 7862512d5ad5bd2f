"""The HTTP edge: the Starlette app, the GraphQL endpoint (GraphQL over HTTP, persisted queries, the response
cache), GraphiQL and the health checks. The top layer: it plans and executes through `gateway.planning`."""
