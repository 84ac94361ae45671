"""SQL over the warehouse: pyiceberg plans the scan, DuckDB runs the query on its Arrow result.

The query sees each table of the ``adstream`` namespace as a view under its bare name
(``ad_events_raw``), read as of the latest committed snapshot: rows the sink has written
but not yet committed are not visible. The scan is materialized in memory, which suits
the local warehouse; on AWS use Athena or any engine that reads Glue and S3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
from pyiceberg.catalog import Catalog

from adstream.warehouse.layout import NAMESPACE

IMPRESSIONS_PER_AD_PER_DAY = """
SELECT adId AS ad_id,
       CAST(timezone('UTC', "timestamp") AS DATE) AS day,
       SUM(impressions) AS impressions
FROM ad_events_raw
WHERE coalesce(type, 'impression') = 'impression'
GROUP BY ALL
ORDER BY day, ad_id
"""
"""Impressions per ad per UTC day, counted as the aggregator counts them: clicks add none,
and a seed event (no ``type``) is an impression."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_query(catalog: Catalog, sql: str) -> QueryResult:
    """Run ``sql`` with every table of the namespace registered under its bare name."""
    with duckdb.connect() as con:
        for _namespace, name in catalog.list_tables(NAMESPACE):
            arrow = catalog.load_table((NAMESPACE, name)).scan().to_arrow()
            con.register(name, arrow)
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return QueryResult(columns, cursor.fetchall())
