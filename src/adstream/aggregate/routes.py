"""HTTP routes of the counts: per-ad stats, top ads, totals and the live dashboard.

Every query parameter is checked before any date arithmetic or database query: bad input
is a 422 with the parameter's name (FastAPI's validation error shape), never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from adstream.aggregate.dashboard import DASHBOARD_HTML
from adstream.aggregate.queries import (
    MAX_INSTANT_CHARS,
    MAX_TOP_LIMIT,
    MAX_TOP_MINUTES,
    CountQueries,
    InvalidRangeError,
    wall_clock_ms,
)
from adstream.aggregate.store import SqlCountStore
from adstream.events import AD_ID_PATTERN

router = APIRouter(tags=["stats"])

# The same rule as the ingest routes' adId (one pattern, in adstream.events).
AdIdPath = Annotated[str, Path(pattern=AD_ID_PATTERN, description="The ad's id")]
_INSTANT = "epoch ms (ASCII digits) or ISO-8601, 1970 to 9999"


def _queries(request: Request) -> CountQueries:
    queries: CountQueries | None = getattr(request.app.state, "counts", None)
    if queries is None:
        raise HTTPException(503, "no count database configured for this API")
    return queries


@router.get("/ads/top", summary="Ads with the most impressions in the last N minutes")
async def top_ads(
    request: Request,
    minutes: Annotated[int, Query(ge=1, le=MAX_TOP_MINUTES)] = 60,
    limit: Annotated[int, Query(ge=1, le=MAX_TOP_LIMIT)] = 10,
) -> dict[str, Any]:
    return await run_in_threadpool(_queries(request).top_ads, minutes, limit)


@router.get("/ads/{adId}/stats", summary="Impressions and clicks of one ad per minute")
async def ad_stats(
    request: Request,
    adId: AdIdPath,  # noqa: N803 - the seed's name for it
    start: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=MAX_INSTANT_CHARS,
            description=f"{_INSTANT}; default: to - 1 h; at most 31 days before 'to'",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", max_length=MAX_INSTANT_CHARS, description=f"{_INSTANT}; default: now"),
    ] = None,
) -> dict[str, Any]:
    queries = _queries(request)
    try:
        return await run_in_threadpool(queries.ad_stats, adId, start, end)
    except InvalidRangeError as exc:
        given = {"from": start, "to": end}
        loc = ("query", exc.param) if exc.param else ("query",)
        value = given[exc.param] if exc.param else given
        error = {"type": "invalid_range", "loc": loc, "msg": str(exc), "input": value}
        raise RequestValidationError([error]) from exc


@router.get("/stats/totals", summary="All impressions and clicks counted so far")
async def totals(request: Request) -> dict[str, int]:
    return await run_in_threadpool(_queries(request).totals)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(DASHBOARD_HTML, headers={"Cache-Control": "no-cache"})


def install_stats(
    app: FastAPI, store: SqlCountStore, clock: Callable[[], int] | None = None
) -> None:
    """Serve the count queries of ``store`` from ``app``."""
    app.state.counts = CountQueries(store, clock or wall_clock_ms)
    app.include_router(router)
