"""The raw-event table, created up front with pyiceberg (needs the ``warehouse`` extra).

``adstream.ad_events_raw`` holds every record of ``ad-events`` as it was sent: the wire
fields under their wire names (``eventId``, ``type``, ``adId``, ``timestamp``,
``impressions``; the seed's Spring events have no ``eventId`` or ``type``) and the Kafka
coordinates the sink's ``KafkaMetadataTransform`` adds. It is partitioned by the day of the
event time, so a query for some days reads only their files. Creating it here, not letting
the sink auto-create it, fixes the types (a timestamp, not a number) and the partitioning.
"""

from __future__ import annotations

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform
from pyiceberg.types import IntegerType, LongType, NestedField, StringType, TimestamptzType

from adstream.warehouse.layout import CATALOG_NAME, NAMESPACE, RAW_EVENTS_TABLE, WarehouseLayout

KAFKA_METADATA_PREFIX = "_kafka_metadata"
"""The transform's default field name: it adds ``_kafka_metadata_topic`` and so on."""

# Every column optional: a seed event has no eventId or type, and a record missing a field
# must land (and be found by a query) rather than stop the sink.
RAW_EVENTS_SCHEMA = Schema(
    NestedField(1, "eventId", StringType(), required=False),
    NestedField(2, "type", StringType(), required=False),
    NestedField(3, "adId", StringType(), required=False),
    NestedField(4, "timestamp", TimestamptzType(), required=False),
    NestedField(5, "impressions", IntegerType(), required=False),
    NestedField(6, f"{KAFKA_METADATA_PREFIX}_topic", StringType(), required=False),
    NestedField(7, f"{KAFKA_METADATA_PREFIX}_partition", IntegerType(), required=False),
    NestedField(8, f"{KAFKA_METADATA_PREFIX}_offset", LongType(), required=False),
    NestedField(9, f"{KAFKA_METADATA_PREFIX}_timestamp", TimestamptzType(), required=False),
)
RAW_EVENTS_PARTITIONING = PartitionSpec(
    PartitionField(source_id=4, field_id=1000, transform=DayTransform(), name="timestamp_day")
)


def open_catalog(layout: WarehouseLayout) -> Catalog:
    """The local catalog, under the name the sink's ``JdbcCatalog`` uses."""
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(CATALOG_NAME, uri=layout.sqlalchemy_uri, warehouse=layout.warehouse_uri)


def ensure_raw_events_table(catalog: Catalog) -> Table:
    """Create the namespace and table if missing (idempotent); return the table."""
    catalog.create_namespace_if_not_exists(NAMESPACE)
    return catalog.create_table_if_not_exists(
        RAW_EVENTS_TABLE, schema=RAW_EVENTS_SCHEMA, partition_spec=RAW_EVENTS_PARTITIONING
    )
