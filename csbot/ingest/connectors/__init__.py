"""Channel connectors: how replies leave csbot for each platform."""
