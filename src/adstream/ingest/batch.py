"""Decode a `POST /events` body: a JSON array or NDJSON, within the size limits."""

from __future__ import annotations

import orjson

MAX_BODY_BYTES = 1024 * 1024
JSON = "application/json"
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


class UnsupportedMediaTypeError(ValueError):
    """The body is neither JSON nor NDJSON (HTTP 415)."""


class MalformedBatchError(ValueError):
    """The body does not parse (HTTP 422); the message names the line or position."""


class BatchTooLargeError(ValueError):
    """More events or bytes than one batch may hold (HTTP 413)."""


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`; raises for other types."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base != JSON and base not in NDJSON_TYPES:
        raise UnsupportedMediaTypeError(
            f"Content-Type must be {JSON} (an array) or application/x-ndjson, got {base or 'none'}"
        )
    return base


def decode(body: bytes, content_type: str | None, max_events: int) -> list[object]:
    """The batch entries, not yet validated as events."""
    kind = media_type(content_type)
    if kind == JSON:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedBatchError(f"invalid JSON: {exc}") from exc
        if not isinstance(data, list):
            raise MalformedBatchError("the JSON body must be an array of events")
        entries: list[object] = data
    else:
        entries = []
        for number, line in enumerate(body.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                entries.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise MalformedBatchError(f"invalid JSON on line {number}: {exc}") from exc
    if not entries:
        raise MalformedBatchError("the batch is empty")
    if len(entries) > max_events:
        raise BatchTooLargeError(f"a batch holds at most {max_events} events, got {len(entries)}")
    return entries
