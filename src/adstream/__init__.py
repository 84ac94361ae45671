"""adstream: ad-event streaming through Apache Kafka on Amazon MSK."""

__version__ = "0.1.0"
