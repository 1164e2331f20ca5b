"""``xqute alerts [--firing] [--json]``: the alerts the daemon evaluates (see
``xqute.monitoring``), read from the db: firing first, then pending, then
recently resolved."""

from __future__ import annotations

import time

import typer

from ..errors import XquteError
from . import _format as fmt
from .common import DB_OPTION, JSON_OPTION, fail, print_json, stdout, table_console

STATE_STYLES = {"firing": "red", "pending": "yellow", "resolved": "green"}


def alerts(
    firing: bool = typer.Option(False, "--firing", help="Only firing alerts."),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Alerts: rule, key, state, since when, value and what it is about."""
    from ..monitoring.alert_store import list_alerts

    try:
        rows = list_alerts(fmt.existing_store(db).db, firing_only=firing)
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json(rows)
        return
    from rich.table import Table
    from rich.text import Text

    now = time.time()
    table = Table(show_edge=False, box=None, header_style="bold")
    for column in ("STATE", "RULE", "KEY", "VALUE", "SINCE", "SUMMARY"):
        table.add_column(column, no_wrap=column != "SUMMARY")
    for a in rows:  # keys and summaries hold job names: text, not markup
        table.add_row(
            Text(a["state"], style=STATE_STYLES.get(a["state"], "")),
            Text(a["rule"]),
            Text(a["key"]),
            f"{a['value']:.4g}",
            fmt.when(a["since"], now),
            Text(a["summary"]),
        )
    table_console().print(table)
    if not rows:
        stdout.print(f"[dim]{'no alert is firing' if firing else 'no alerts'}[/]")
