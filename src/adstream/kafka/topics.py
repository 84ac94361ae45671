"""Topic names the Kafka helpers need; kept here so `adstream.kafka` imports nothing else."""

from __future__ import annotations

AD_EVENTS_TOPIC = "ad-events"
