"""Console output: short rich summaries of a run."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

SUMMARY_KEYS = ("rows_in", "rows_kept", "rows_rejected", "view_rows", "view_groups", "target_clipped")


def print_summary(metrics: dict, run_dir, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"alloy_hydra · {metrics.get('data')} · {metrics.get('target')}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for key in SUMMARY_KEYS:
        if key in metrics:
            table.add_row(key, str(metrics[key]))
    for key, value in metrics.items():
        if key.startswith("time_"):
            table.add_row(key, f"{value:.2f}")
    table.add_row("run dir", str(run_dir))
    console.print(table)
