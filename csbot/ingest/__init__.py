"""Ingest: verify, parse and idempotently accept inbound webhook events."""
