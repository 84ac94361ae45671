"""Where the local warehouse keeps its catalog and files, and the names both sides share.

The Kafka Connect sink (Java, Iceberg's ``JdbcCatalog``) and Python (pyiceberg's
``SqlCatalog``) open the same SQLite catalog under the same catalog name, so each sees the
other's tables: the name is part of every catalog row. Nothing here needs the
``warehouse`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CATALOG_NAME = "adstream"
NAMESPACE = "adstream"
RAW_EVENTS_TABLE = f"{NAMESPACE}.ad_events_raw"


@dataclass(frozen=True)
class WarehouseLayout:
    """A local warehouse: ``catalog.db`` (SQLite, the Iceberg catalog) and ``data/`` (files)."""

    root: Path

    @classmethod
    def at(cls, root: Path | str) -> WarehouseLayout:
        return cls(Path(root).expanduser().resolve())

    @property
    def catalog_db(self) -> Path:
        return self.root / "catalog.db"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def sqlalchemy_uri(self) -> str:
        """The catalog for pyiceberg's ``SqlCatalog``."""
        return f"sqlite:///{self.catalog_db}"

    @property
    def jdbc_uri(self) -> str:
        """The same catalog for Iceberg's Java ``JdbcCatalog``."""
        return f"jdbc:sqlite:{self.catalog_db}"

    @property
    def warehouse_uri(self) -> str:
        return self.data_dir.as_uri()


class WarehouseSettings(BaseSettings):
    """``ADSTREAM_WAREHOUSE_DIR``: the local warehouse (default ``.adstream/warehouse``)."""

    model_config = SettingsConfigDict(env_prefix="ADSTREAM_WAREHOUSE_", extra="ignore")

    dir: Path = Field(Path(".adstream/warehouse"), description="local Iceberg warehouse")

    def layout(self) -> WarehouseLayout:
        return WarehouseLayout.at(self.dir)
