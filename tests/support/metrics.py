"""The series names the API and the aggregator can expose, for checks of alert rules and
dashboards (a renamed metric would leave a rule that never fires, a panel that stays empty)."""

from __future__ import annotations

import re

from adstream.aggregate.metrics import AggregatorMetrics
from adstream.ingest.metrics import Metrics

SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def exported_series() -> set[str]:
    names: set[str] = set()
    for registry in (Metrics().registry, AggregatorMetrics().registry):
        for family in registry.collect():
            names.add(family.name)
            names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def named_metrics(expr: str) -> set[str]:
    """The adstream metric names a PromQL expression mentions."""
    return set(re.findall(r"\badstream_[a-z_]+", expr))


def broker_metrics(expr: str) -> set[str]:
    """The Kafka broker metric names (the JMX exporter's) a PromQL expression mentions:
    checked against a live broker's exporter, as the code does not register them."""
    return set(re.findall(r"\b(?:kafka|java_lang)_[A-Za-z0-9_]+", expr))
