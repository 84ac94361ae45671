"""The live dashboard in a real headless Chromium: counts move on the page as events arrive.

Kafka → aggregator → SQLite → stats API → page, all real. A screenshot is saved to
``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Page, expect, sync_playwright

from adstream.aggregate.routes import install_stats
from adstream.aggregate.store import SqlCountStore
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import (
    RunningAggregator,
    admin_producer,
    event,
    private_topic,
    send_event,
)
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def stats_server(store: SqlCountStore) -> Iterator[str]:
    app = FastAPI()
    install_stats(app, store)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page() -> Iterator[Page]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is needed: run scripts/system-deps.sh")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        yield context.new_page()
        browser.close()


def test_dashboard_shows_counts_moving(
    broker: LocalBroker, store: SqlCountStore, stats_server: str, page: Page
) -> None:
    topic = private_topic(broker)
    page.goto(f"{stats_server}/dashboard")
    expect(page.locator("#status")).to_contain_text("live", timeout=10_000)
    expect(page.locator("#total-impressions")).to_have_text("0")

    producer = admin_producer(broker)
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            now = time.time_ns() // 1_000_000
            for i in range(40):
                send_event(producer, topic.topic, event("AD-HOT" if i % 4 else "AD-WARM", now))
            send_event(producer, topic.topic, event("AD-HOT", now, click=True))
            producer.flush(10)
            time.sleep(0.25)

    sender = threading.Thread(target=traffic, daemon=True)
    with RunningAggregator(broker, topic, store):
        sender.start()
        try:
            expect(page.locator("#top-ads tr").first).to_have_attribute(
                "data-ad-id", "AD-HOT", timeout=20_000
            )
            expect(page.locator("#top-ads tr").nth(1)).to_have_attribute("data-ad-id", "AD-WARM")
            # The per-second rate turns positive and the total keeps growing, without a reload.
            expect(page.locator("#rate-impressions")).not_to_have_text("0", timeout=10_000)
            first = int(page.locator("#total-impressions").inner_text().replace(",", ""))
            shown = "document.getElementById('total-impressions').textContent.replace(/,/g, '')"
            page.wait_for_function(f"Number({shown}) > {first}", timeout=10_000)
            # The chart has both series, axes with tick labels, units and a legend.
            page.wait_for_function(
                "document.querySelector('#chart .series-imps')?.getAttribute('d').split('L')"
                ".length >= 3",
                timeout=10_000,
            )
            chart = page.locator("#chart")
            expect(chart.locator("#y-axis-label")).to_have_text("events/s")
            expect(chart.locator("#x-axis-label")).to_contain_text("time")
            expect(chart.locator("path.series-clicks")).to_have_count(1)
            assert chart.locator("text.ytick").count() >= 3
            assert chart.locator("text.xtick").count() >= 1
            assert re.fullmatch(
                r"\d{2}:\d{2}:\d{2}( [AP]M)?",
                chart.locator("text.xtick").first.text_content() or "",
            )
            assert chart.locator("text.ytick").first.text_content() == "0"
            expect(page.locator("#legend")).to_have_text("impressions/sclicks/s")
            # Every number names its window.
            for label in (
                "Impressions / s",
                "Clicks / s",
                "Impressions, last 5 minutes",
                "Impressions, since start",
                "Ads, since start",
                "Events per second, last 2 minutes",
                "Top ads, last 5 minutes",
            ):
                expect(page.get_by_text(label, exact=True)).to_be_visible()
            expect(page.locator("#rate-impressions-window")).to_have_text(
                "over the last poll (≈1 s)"
            )
            # The 5-minute card equals the table's window total and its rows (2 ads < limit);
            # "since start" is never below it. Read in one go: one poll's values.
            shown = page.evaluate(
                """() => {
                  const n = id => Number(document.getElementById(id).textContent.replace(/,/g, ""));
                  const rows = [...document.querySelectorAll("#top-ads tr")]
                    .map(r => Number(r.cells[2].textContent.replace(/,/g, "")));
                  return {card: n("window-impressions"), foot: n("top-total-impressions"),
                          rows: rows.reduce((a, b) => a + b, 0), total: n("total-impressions")};
                }"""
            )
            assert shown["card"] == shown["foot"] == shown["rows"] > 0, shown
            assert shown["total"] >= shown["card"], shown
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            stop.set()
            sender.join(10)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    assert page.locator("#total-ads").inner_text() == "2"
