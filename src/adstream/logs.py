"""Structured logs for every command: stdlib `logging`, rendered by structlog.

One root handler on stderr with structlog's `ProcessorFormatter`, so the modules'
`logging.getLogger(__name__)` loggers, library loggers (botocore, Granian) and structlog
loggers all come out in one format: `console` (for people, the default on a terminal) or
`json` (one object per line with `event`, `level`, `logger`, `timestamp`, `process`; the default
otherwise, for log shippers). `ADSTREAM_LOG_FORMAT` and `ADSTREAM_LOG_LEVEL` choose.

`configure_logging` runs at CLI start and again in each API worker: Granian may start its
workers in a fresh interpreter (spawn), which inherits the environment but not the handlers.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog
from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from structlog.typing import Processor

LogFormat = Literal["console", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class LogSettings(BaseSettings):
    """`ADSTREAM_LOG_FORMAT` (console|json, default by terminal) and `ADSTREAM_LOG_LEVEL`."""

    model_config = SettingsConfigDict(env_prefix="ADSTREAM_LOG_", frozen=True, extra="forbid")

    format: LogFormat | None = None
    level: LogLevel = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class LogSettingsError(ValueError):
    """An `ADSTREAM_LOG_*` variable has a value we cannot use; the message names it."""


def load_log_settings() -> LogSettings:
    """`LogSettings` from the environment, or `LogSettingsError` naming each bad variable."""
    try:
        return LogSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ADSTREAM_LOG_{'_'.join(map(str, error['loc'])).upper()}={error['input']!r}: "
            f"{error['msg']}"
            for error in exc.errors()
        )
        raise LogSettingsError(problems) from None


class _AdstreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring again replaces only it."""


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # The API runs several worker processes: say which one wrote the line.
        structlog.processors.CallsiteParameterAdder(
            [structlog.processors.CallsiteParameter.PROCESS]
        ),
    ]


def make_formatter(fmt: LogFormat, *, colors: bool = False) -> structlog.stdlib.ProcessorFormatter:
    """The formatter for stdlib records and structlog events alike."""
    final: list[Processor] = (
        # The traceback as one string: structured frames would carry locals (secrets).
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=colors)]
    )
    return structlog.stdlib.ProcessorFormatter(
        # `extra={...}` fields of stdlib calls become keys of the event.
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )


def configure_logging(settings: LogSettings | None = None, stream: TextIO | None = None) -> None:
    """Route the root logger (and structlog) to one stderr handler in the chosen format.

    Handlers installed by others (pytest's capture, a host application) are left in place.
    """
    settings = settings or load_log_settings()
    stream = stream or sys.stderr
    tty = stream.isatty()
    handler = _AdstreamHandler(stream)
    handler.setFormatter(
        make_formatter(settings.format or ("console" if tty else "json"), colors=tty)
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _AdstreamHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# Granian's own loggers print to stdout with their own format; hand them to the root handler.
GRANIAN_LOG_CONFIG: dict[str, Any] = {
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    }
}
