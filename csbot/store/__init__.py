"""Store: database engine, tables and queries."""
