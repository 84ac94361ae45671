"""The raw-event table (pyiceberg, SQLite catalog) and the SQL that reads it, without Java:
rows are appended with pyiceberg as the sink would write them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.transforms import DayTransform

from adstream.warehouse.layout import CATALOG_NAME, RAW_EVENTS_TABLE, WarehouseLayout
from adstream.warehouse.query import IMPRESSIONS_PER_AD_PER_DAY, run_query
from adstream.warehouse.table import ensure_raw_events_table, open_catalog

DAY1 = dt.datetime(2026, 11, 26, 23, 59, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 11, 27, 0, 1, tzinfo=dt.UTC)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(WarehouseLayout.at(tmp_path))


Row = tuple[str | None, str | None, str, dt.datetime, int]


def _append(catalog: Catalog, rows: list[Row]) -> None:
    table = ensure_raw_events_table(catalog)
    schema = table.schema().as_arrow()
    columns: dict[str, list[object]] = {field.name: [] for field in schema}
    for offset, (event_id, kind, ad, at, impressions) in enumerate(rows):
        for name, value in (
            ("eventId", event_id),
            ("type", kind),
            ("adId", ad),
            ("timestamp", at),
            ("impressions", impressions),
            ("_kafka_metadata_topic", "ad-events"),
            ("_kafka_metadata_partition", 0),
            ("_kafka_metadata_offset", offset),
            ("_kafka_metadata_timestamp", at),
        ):
            columns[name].append(value)
    table.append(pa.Table.from_pydict(columns, schema=schema))


def test_the_table_is_created_once_partitioned_by_event_day(catalog: Catalog) -> None:
    first = ensure_raw_events_table(catalog)
    again = ensure_raw_events_table(catalog)
    assert again.metadata.table_uuid == first.metadata.table_uuid
    [field] = first.spec().fields
    assert isinstance(field.transform, DayTransform)
    assert first.schema().find_field(field.source_id).name == "timestamp"
    assert catalog.name == CATALOG_NAME


def test_impressions_per_ad_per_day_count_as_the_aggregator_does(catalog: Catalog) -> None:
    """Clicks add no impressions; a seed event (no type) is an impression; days are UTC."""
    _append(
        catalog,
        [
            ("e1", "impression", "AD1", DAY1, 1),
            ("e2", "impression", "AD1", DAY2, 1),
            ("e3", "click", "AD1", DAY2, 1),
            (None, None, "AD1", DAY2, 3),  # the seed's Spring format
            ("e4", "impression", "AD2", DAY2, 2),
        ],
    )
    result = run_query(catalog, IMPRESSIONS_PER_AD_PER_DAY)
    assert result.columns == ["ad_id", "day", "impressions"]
    assert result.rows == [
        ("AD1", DAY1.date(), 1),
        ("AD1", DAY2.date(), 4),
        ("AD2", DAY2.date(), 2),
    ]


def test_a_query_sees_the_table_under_its_bare_name(catalog: Catalog) -> None:
    _append(catalog, [("e1", "impression", "AD1", DAY1, 1)])
    assert run_query(catalog, "SELECT count(*) FROM ad_events_raw").rows == [(1,)]
    assert RAW_EVENTS_TABLE.endswith(".ad_events_raw")
