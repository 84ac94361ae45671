"""Kafka client settings, client factory, MSK auth and admin helpers."""
