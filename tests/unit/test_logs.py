"""One log setup for every command: stdlib and structlog records, as JSON or for a console."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import pytest
import structlog

from adstream.logs import LogSettings, LogSettingsError, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_stdlib_record_is_one_json_line_with_event_level_logger() -> None:
    out = io.StringIO()
    configure_logging(LogSettings(format="json"), out)
    logging.getLogger("adstream.aggregate.consumer").warning(
        "dead letter %s[%d]", "ad-events", 3, extra={"offset": 42}
    )
    [line] = json_lines(out)
    assert line["event"] == "dead letter ad-events[3]"
    assert line["level"] == "warning"
    assert line["logger"] == "adstream.aggregate.consumer"
    assert line["offset"] == 42
    assert line["process"] == os.getpid()
    assert isinstance(line["timestamp"], str)


def test_exception_is_a_string_in_the_same_json_line() -> None:
    out = io.StringIO()
    configure_logging(LogSettings(format="json"), out)
    secret = "hunter2"
    try:
        raise ValueError(f"bad length {len(secret)}")
    except ValueError:
        logging.getLogger("adstream.x").exception("failed")
    [line] = json_lines(out)
    assert line["event"] == "failed"
    assert isinstance(line["exception"], str)
    assert "ValueError: bad length 7" in line["exception"]
    assert "hunter2" not in out.getvalue(), "no frame locals in the log"


def test_structlog_loggers_share_the_handler() -> None:
    out = io.StringIO()
    configure_logging(LogSettings(format="json"), out)
    structlog.get_logger("adstream.bench").info("batch committed", records=500)
    [line] = json_lines(out)
    assert line == {
        "event": "batch committed",
        "records": 500,
        "level": "info",
        "logger": "adstream.bench",
        "timestamp": line["timestamp"],
        "process": os.getpid(),
    }


def test_level_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSTREAM_LOG_LEVEL", "warning")
    monkeypatch.setenv("ADSTREAM_LOG_FORMAT", "json")
    out = io.StringIO()
    configure_logging(stream=out)
    logging.getLogger("adstream.x").info("hidden")
    logging.getLogger("adstream.x").warning("shown")
    assert [line["event"] for line in json_lines(out)] == ["shown"]


def test_console_format_is_not_json() -> None:
    out = io.StringIO()
    configure_logging(LogSettings(format="console"), out)
    logging.getLogger("adstream.x").info("hello %s", "there")
    text = out.getvalue()
    assert "hello there" in text
    assert "adstream.x" in text
    assert not text.startswith("{")


def test_default_format_off_a_terminal_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADSTREAM_LOG_FORMAT", raising=False)
    out = io.StringIO()  # isatty() is False, like a container's or a pipe's stderr
    configure_logging(stream=out)
    logging.getLogger("adstream.x").warning("w")
    assert json_lines(out)[0]["event"] == "w"


def test_configuring_again_replaces_only_its_own_handler() -> None:
    other = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    configure_logging(LogSettings(format="json"), first)
    configure_logging(LogSettings(format="json"), second)
    logging.getLogger("adstream.x").warning("once")
    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once"]
    assert other in logging.getLogger().handlers


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSTREAM_LOG_FORMAT", "xml")
    with pytest.raises(LogSettingsError, match=r"ADSTREAM_LOG_FORMAT='xml': Input should be"):
        configure_logging(stream=io.StringIO())
