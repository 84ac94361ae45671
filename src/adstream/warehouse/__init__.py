"""The raw-event warehouse: an Apache Iceberg table the Kafka Connect sink fills, read with
pyiceberg and queried with DuckDB (the ``warehouse`` extra)."""

from adstream.warehouse.layout import (
    CATALOG_NAME,
    NAMESPACE,
    RAW_EVENTS_TABLE,
    WarehouseLayout,
)

__all__ = ["CATALOG_NAME", "NAMESPACE", "RAW_EVENTS_TABLE", "WarehouseLayout"]
