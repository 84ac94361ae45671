"""Pick the settings source: environment, a dotenv file, or a Java client.properties file."""

from __future__ import annotations

from pathlib import Path

from adstream.kafka.java_properties import from_java_properties
from adstream.kafka.settings import KafkaSettings


def load_settings(path: Path | None = None) -> KafkaSettings:
    """Settings from `path` (`*.properties`: Java format; else dotenv with `ADSTREAM_KAFKA_*`
    keys, which environment variables override) or, without a path, from the environment."""
    if path is None:
        return KafkaSettings()  # values come from the environment
    if path.suffix == ".properties":
        return from_java_properties(path)
    if not path.is_file():
        raise FileNotFoundError(f"settings file {path} does not exist")
    return KafkaSettings(_env_file=path)
