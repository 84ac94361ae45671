"""The stats routes over a real SQLite count store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adstream.aggregate.model import MINUTE_MS, Batch, Tally, minute_of
from adstream.aggregate.routes import install_stats
from adstream.aggregate.stores import open_store

T0 = 1_790_000_040_000
NOW = T0 + 120 * MINUTE_MS + 30_000  # the API's clock in these tests
THIS_MINUTE = minute_of(NOW)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    batch = Batch(
        tallies=[
            Tally("AD1", T0, 10, 1),
            Tally("AD1", T0 + MINUTE_MS, 5, 0),
            Tally("AD1", T0 + 3 * MINUTE_MS, 7, 2),
            Tally("HOT", THIS_MINUTE, 50, 5),
            Tally("WARM", THIS_MINUTE - MINUTE_MS, 30, 1),
            Tally("OLD", THIS_MINUTE - 90 * MINUTE_MS, 999, 0),
        ]
    )
    batch.consumed("ad-events", 0, 0)
    store.commit(batch)
    app = FastAPI()
    install_stats(app, store, clock=lambda: NOW)
    with TestClient(app) as test_client:
        yield test_client
    store.close()


def test_stats_lists_minute_buckets_and_totals(client: TestClient) -> None:
    response = client.get("/ads/AD1/stats", params={"from": T0, "to": T0 + 2 * MINUTE_MS})
    assert response.status_code == 200
    body = response.json()
    assert body["minutes"] == [
        {"minute": "2026-09-21T14:14:00Z", "impressions": 10, "clicks": 1},
        {"minute": "2026-09-21T14:15:00Z", "impressions": 5, "clicks": 0},
    ]
    assert body["totals"] == {"impressions": 15, "clicks": 1}


def test_stats_accepts_iso_times(client: TestClient) -> None:
    body = client.get(
        "/ads/AD1/stats", params={"from": "2026-09-21T14:15:00Z", "to": "2026-09-21T14:20:00"}
    ).json()
    assert body["totals"] == {"impressions": 12, "clicks": 2}
    assert body["from"] == "2026-09-21T14:15:00Z"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": T0 + 1, "to": T0}, "'from' must be before 'to'"),
        ({"from": "yesterday"}, "neither epoch milliseconds nor an ISO-8601 time"),
        ({"from": T0, "to": T0 + 40 * 24 * 60 * MINUTE_MS}, "at most 31 days"),
    ],
)
def test_bad_ranges_are_422(client: TestClient, params: dict[str, object], message: str) -> None:
    response = client.get("/ads/AD1/stats", params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_bad_ad_id_is_422(client: TestClient) -> None:
    assert client.get("/ads/not%20valid/stats").status_code == 422


def test_top_ranks_recent_ads_by_impressions(client: TestClient) -> None:
    body = client.get("/ads/top", params={"minutes": 5, "limit": 10}).json()
    assert [(a["adId"], a["impressions"], a["clicks"]) for a in body["ads"]] == [
        ("HOT", 50, 5),
        ("WARM", 30, 1),
    ]
    assert client.get("/ads/top", params={"minutes": 1}).json()["ads"][0]["adId"] == "HOT"
    assert len(client.get("/ads/top", params={"minutes": 5, "limit": 1}).json()["ads"]) == 1
    assert client.get("/ads/top", params={"minutes": 0}).status_code == 422


def test_totals_and_dashboard(client: TestClient) -> None:
    assert client.get("/stats/totals").json() == {"impressions": 1101, "clicks": 9, "ads": 4}
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="top-ads"' in page.text
