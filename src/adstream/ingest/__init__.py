"""The ingestion API: publisher, service, HTTP routes."""
