"""Exactly-once aggregation of ad events into a database."""
