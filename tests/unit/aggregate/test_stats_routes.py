"""The stats routes over a real SQLite count store; hostile input is a 422, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from adstream.aggregate.model import MINUTE_MS, Batch, Tally, minute_of
from adstream.aggregate.routes import install_stats
from adstream.aggregate.store_url import open_store
from adstream.events import valid_ad_id

T0 = 1_790_000_040_000
NOW = T0 + 120 * MINUTE_MS + 30_000  # the API's clock in these tests
THIS_MINUTE = minute_of(NOW)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
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
    yield app
    store.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


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


def _messages(response: object) -> str:
    body = response.json()  # type: ignore[attr-defined]
    return " | ".join(f"{e['loc']}: {e['msg']}" for e in body["detail"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": T0 + 1, "to": T0}, "'from' must be before 'to'"),
        ({"from": T0, "to": T0}, "'from' must be before 'to'"),
        ({"from": "yesterday"}, "neither epoch milliseconds (ASCII digits) nor an ISO-8601 time"),
        ({"from": T0, "to": T0 + 40 * 24 * 60 * MINUTE_MS}, "at most 31 days"),
        ({"from": "0001-01-01T00:00:00"}, "'from' must be from 1970-01-01T00:00:00Z (0)"),
    ],
)
def test_bad_ranges_are_422(client: TestClient, params: dict[str, object], message: str) -> None:
    response = client.get("/ads/AD1/stats", params=params)
    assert response.status_code == 422
    assert message in _messages(response)


# The reports first, then what Python's int()/isdigit()/fromisoformat would let
# through or overflow on.
HOSTILE_INSTANTS = [
    ("to", "99999999999999999"),  # past year 9999: datetime overflow
    ("to", "253402300800000"),  # one ms past 9999-12-31T23:59:59.999Z
    ("from", "\u00b2"),  # '²': str.isdigit() is True, int() refuses
    ("to", "\u00b2\u00b2"),
    (
        "from",
        "\u0661\u0667\u0669\u0660\u0660\u0660\u0660\u0660\u0664\u0660\u0660\u0660\u0660",
    ),  # Arabic-Indic digits: int() takes them
    ("from", "\uff11\uff17\uff19\uff10"),  # fullwidth digits
    ("from", "-1"),
    ("to", "-1790000040000"),
    ("from", "1969-12-31T23:59:59Z"),
    ("to", "9999-12-31T23:59:59-14:00"),  # year 10000 in UTC
    ("from", "0001-01-01T00:00:00+14:00"),  # before year 1 in UTC
    ("to", "9" * 5000),  # longer than int() converts
    ("to", "9" * 64),
    ("from", ""),
    ("from", " "),
    ("from", "\x00"),
    ("from", "1e12"),
    ("from", "NaN"),
    ("from", "inf"),
    ("from", "1_790_000_040_000"),
    ("from", "0x1a"),
    ("to", "2026-13-01"),
    ("to", "2026-02-30T00:00:00"),
]


@pytest.mark.parametrize(("param", "value"), HOSTILE_INSTANTS)
def test_hostile_instants_are_422_naming_the_parameter(
    client: TestClient, param: str, value: str
) -> None:
    response = client.get("/ads/AD1/stats", params={param: value})
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["query", param]]


@pytest.mark.parametrize(
    "params",
    [
        {"minutes": "99999999999999999999999"},
        {"minutes": "9" * 5000},
        {"minutes": "1441"},
        {"minutes": "-1"},
        {"minutes": "0"},
        {"minutes": "\u00b2"},
        {"minutes": "\u0661"},
        {"minutes": "1.5"},
        {"minutes": "NaN"},
        {"limit": "101"},
        {"limit": "-5"},
        {"limit": "99999999999999999999"},
        {"limit": "\u00b2"},
        {"limit": ""},
    ],
)
def test_hostile_top_parameters_are_422(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/ads/top", params=params)
    assert response.status_code == 422, response.text
    assert [e["loc"][:2] for e in response.json()["detail"]] == [["query", next(iter(params))]]


def test_edges_of_the_instant_range_are_accepted(client: TestClient) -> None:
    last = 253_402_300_799_999
    assert client.get("/ads/AD1/stats", params={"from": last - 1, "to": last}).status_code == 200
    assert client.get("/ads/AD1/stats", params={"from": 0, "to": 1}).status_code == 200
    body = client.get("/ads/AD1/stats", params={"to": 1000}).json()
    assert body["from"] == "1970-01-01T00:00:00Z"  # the default hour is cut at 1970


@given(
    start=st.none() | st.text(max_size=40) | st.integers().map(str),
    end=st.none() | st.text(max_size=40) | st.integers().map(str),
)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_from_and_to_give_200_or_422(
    client: TestClient, start: str | None, end: str | None
) -> None:
    params = {k: v for k, v in (("from", start), ("to", end)) if v is not None}
    assert client.get("/ads/AD1/stats", params=params).status_code in (200, 422)


@pytest.mark.parametrize(
    "ad_id",
    [
        "AD1",
        "a.b_c-D",
        "x" * 64,
        "x" * 65,
        "AD1\n",
        "AD 1",
        "\u00b2",
        "ad\u0131",
        "a+b",
        "a:b",
        "%00",
    ],
)
def test_stats_take_the_ingest_routes_ad_id_rule(client: TestClient, ad_id: str) -> None:
    response = client.get(f"/ads/{quote(ad_id, safe='')}/stats")
    assert response.status_code == (200 if valid_ad_id(ad_id) else 422), response.text


def test_schemathesis_finds_no_server_error(app: FastAPI) -> None:
    """Every stats operation with generated valid and invalid input: never a 5xx."""
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/ads/{adId}/stats", "/ads/top", "/stats/totals"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        check()


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


def test_top_gives_window_totals_over_every_ad_not_only_the_listed(client: TestClient) -> None:
    """The dashboard's "last 5 minutes" card shows these: the same window as the table."""
    body = client.get("/ads/top", params={"minutes": 5, "limit": 1}).json()
    assert [a["adId"] for a in body["ads"]] == ["HOT"]
    assert body["total"] == {"impressions": 80, "clicks": 6, "ads": 2}
    # 90 minutes back includes OLD (999) but not AD1's buckets two hours back.
    wide = client.get("/ads/top", params={"minutes": 91, "limit": 10}).json()
    assert wide["total"] == {"impressions": 1079, "clicks": 6, "ads": 3}
    assert sum(a["impressions"] for a in wide["ads"]) == wide["total"]["impressions"]
    this_minute = client.get("/ads/top", params={"minutes": 1, "limit": 10}).json()
    assert this_minute["total"] == {"impressions": 50, "clicks": 5, "ads": 1}
