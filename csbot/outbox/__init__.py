"""Outbox: durable delivery of replies (claim -> send -> backoff -> dead letter)."""
