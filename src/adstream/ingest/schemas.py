"""Pydantic models that document the API in OpenAPI (requests are parsed by the service)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from adstream.events import AD_ID_PATTERN, MAX_BATCH_EVENTS, MAX_IMPRESSIONS, MIN_IMPRESSIONS


class BatchEntry(BaseModel):
    """One event of a batch; omitted fields get defaults."""

    adId: str = Field(pattern=AD_ID_PATTERN)  # noqa: N815  (wire name)
    type: Literal["impression", "click"] = "impression"
    timestamp: int | None = Field(
        default=None,
        ge=0,
        description="epoch ms; default: now; at most 7 days old and 5 minutes ahead "
        "(ADSTREAM_API_MAX_EVENT_AGE_S, ADSTREAM_API_MAX_EVENT_AHEAD_S)",
    )
    impressions: int = Field(default=1, ge=MIN_IMPRESSIONS, le=MAX_IMPRESSIONS)
    eventId: str | None = Field(default=None, description="UUID; default: generated")  # noqa: N815
    campaignId: str | None = Field(  # noqa: N815
        default=None, min_length=1, max_length=128, description="optional (schema version 2)"
    )


class Accepted(BaseModel):
    accepted: int


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


class Health(BaseModel):
    status: str
    detail: str | None = None


def batch_request_body() -> dict[str, Any]:
    """OpenAPI `requestBody` of `POST /events` (read raw, so declared by hand)."""
    array = {"type": "array", "items": BatchEntry.model_json_schema(), "maxItems": MAX_BATCH_EVENTS}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": array},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }
