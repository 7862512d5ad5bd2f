"""Work decided once per operation: the operation's plan (what it reads, what it costs, its limits), the
compiled answers and the executor that runs them over the schema's resolvers."""
