"""The GraphQL schema's types, read from the upstream objects, and the field declarations (what each field
reads, derives or costs upstream). The executable schema is assembled in `gateway.planning.executable`."""
