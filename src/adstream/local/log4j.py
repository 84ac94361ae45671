"""log4j2 configuration for the local Java processes (broker, Kafka Connect).

Each logs to one file, rolled at 20 MB with five files kept, so a long-running local
stack cannot fill the disk; only the appender name, pattern and logger levels differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def rolling_file_yaml(name: str, log_file: Path, pattern: str, levels: Mapping[str, str]) -> str:
    """A log4j2 YAML configuration: root at INFO into `log_file`, `levels` per logger."""
    loggers = "".join(
        f"      - name: {logger}\n        level: {level}\n" for logger, level in levels.items()
    )
    return f"""Configuration:
  Appenders:
    RollingFile:
      name: {name}
      fileName: "{log_file}"
      filePattern: "{log_file}.%i"
      PatternLayout:
        pattern: "{pattern}"
      Policies:
        SizeBasedTriggeringPolicy:
          size: 20MB
      DefaultRolloverStrategy:
        max: 5
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: {name}
    Logger:
{loggers}"""
