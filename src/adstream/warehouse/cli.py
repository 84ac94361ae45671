"""``adstream warehouse query "SQL"``: SQL (DuckDB) over the local Iceberg warehouse.

pyiceberg and DuckDB are the optional ``warehouse`` extra, imported inside the command so
``adstream`` without it still runs every other command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from adstream.warehouse.layout import WarehouseSettings

EXIT_MISSING_EXTRA = 2

app = typer.Typer(
    help="Query the raw-event Iceberg table that `adstream connect` fills.",
    no_args_is_help=True,
)


@app.callback()
def _warehouse() -> None:
    """Keep `query` a named sub-command while it is the only one."""


@app.command()
def query(
    sql: Annotated[
        str | None,
        typer.Argument(
            help="DuckDB SQL; the table is `ad_events_raw` [default: impressions per ad per day]"
        ),
    ] = None,
    dir: Annotated[
        Path | None, typer.Option("--dir", help="Warehouse [default: .adstream/warehouse]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row")] = False,
) -> None:
    """Run SQL over the latest committed snapshot of the warehouse's tables."""
    try:
        from adstream.warehouse.query import IMPRESSIONS_PER_AD_PER_DAY, run_query
        from adstream.warehouse.table import open_catalog
    except ImportError as exc:
        typer.secho(
            f"error: this command needs the warehouse extra "
            f"(pip install 'adstream[warehouse]'): {exc}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(EXIT_MISSING_EXTRA) from None
    layout = WarehouseSettings(dir=dir).layout() if dir else WarehouseSettings().layout()
    if not layout.catalog_db.exists():
        typer.secho(
            f"error: no warehouse in {layout.root}: start the sink with `adstream connect up`",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    try:
        result = run_query(open_catalog(layout), sql or IMPRESSIONS_PER_AD_PER_DAY)
    except Exception as exc:  # DuckDB's and pyiceberg's errors: report, do not trace
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    if as_json:
        for values in result.rows:
            typer.echo(json.dumps(dict(zip(result.columns, values, strict=True)), default=str))
        return
    cells: list[list[str]] = [result.columns, *[[str(v) for v in row] for row in result.rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(result.columns))]
    for line in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    typer.echo(f"({len(result.rows)} rows)", err=True)
