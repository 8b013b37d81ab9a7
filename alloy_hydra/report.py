"""Console output: short rich summaries of a run."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

import pandas as pd
from rich.console import Console
from rich.table import Table

log = logging.getLogger("alloy_hydra.progress")
LOG_EVERY_S = 10.0  # without a terminal, a progress line in the log at most this often


class LogTicker:
    """Progress for output that is not a terminal (nohup, a cluster job, CI), where a rich bar prints nothing:
    a log line with done / total, the share and an estimate of the time left, at most every LOG_EVERY_S seconds
    (and at the end). On a terminal it stays silent: the bar shows the same."""

    def __init__(self, label: str, total: float = 0, stream=None):
        self.label, self.total, self.done = label, float(total), 0.0
        self.on = not (stream or sys.stdout).isatty()
        self.start = self.last = time.monotonic()

    def update(self, done: float | None = None, total: float | None = None, what: str = "", advance: float = 0):
        self.total = float(total) if total is not None else self.total
        self.done = float(done) if done is not None else self.done + advance
        now = time.monotonic()
        if not self.on or (now - self.last < LOG_EVERY_S and self.done < self.total):
            return
        self.last = now
        share = self.done / self.total if self.total else 0.0
        left = (now - self.start) * (1 - share) / share if share > 0 else float("nan")
        eta = f", about {left:.0f} s left" if share > 0 and share < 1 else ""
        log.info(
            "%s: %g of %g (%.0f %%)%s%s",
            self.label,
            self.done,
            self.total,
            100 * share,
            eta,
            f" — {what}" if what else "",
        )


SUMMARY_KEYS = (
    "rows_in",
    "rows_kept",
    "rows_rejected",
    "view_rows",
    "view_groups",
    "target_clipped",
    "n_train_rows",
    "n_holdout_rows",
    "generator",
    "generator_used",
    "n_synthetic",
    "qc_pass",
    "tstr_r2",
    "real_only_r2",
    "regressor",
    "method",
    "complexity",
    "cv_mae",
    "holdout_mae",
    "holdout_r2",
    "baseline_ridge_r2",
    "baseline_gbm_r2",
    "holdout_mae_in_domain",
    "holdout_mae_out_domain",
    "coverage_1sigma",
    "coverage_2sigma",
    "sigma_error_spearman",
    "physics_pass",
    "physics_checks_applicable",
    "sr_time_cap_fired",
    "n_recommendations",
    "best_distance",
    "design_hit_rate",
)


def print_summary(metrics: dict, run_dir, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"alloy_hydra · {metrics.get('data')} · {metrics.get('target')}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for key in SUMMARY_KEYS:
        if key in metrics:
            v = metrics[key]
            table.add_row(key, f"{v:.3f}" if isinstance(v, float) else str(v))
    for key, value in metrics.items():
        if key.startswith("time_"):
            table.add_row(key, f"{value:.2f}")
    console.print(table)
    console.print(f"run dir: {run_dir}", soft_wrap=True, highlight=False)


def print_acceptance(acc: dict, title: str, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=title)
    for col in ("check", "value", "threshold", "pass"):
        table.add_column(col)
    for c in acc["checks"]:
        v = c["value"]
        verdict = (
            "[dim]cannot fail[/dim]"
            if c["cannot_fail"]
            else ("[green]pass[/green]" if c["pass"] else "[red]FAIL[/red]")
        )
        table.add_row(c["check"], "—" if v is None else f"{v:.4g}", f"{c['op']} {c['threshold']:g}", verdict)
    console.print(table)
    console.print(
        f"overall: {'[green]PASS' if acc['overall_pass'] else '[red]FAIL'}[/] "
        f"({acc['n_checks_counted']} checks that can fail)"
    )


@contextmanager
def steps(label: str, total: int):
    """A transient progress bar over a stage's steps: `doing(what)` marks the previous step done and says what
    runs now (rich shows the elapsed time and an ETA)."""
    from rich.progress import Progress

    ticker = LogTicker(label, total)
    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        started = []

        def doing(what: str) -> None:
            bar.update(task, advance=1 if started else 0, description=f"{label}: {what}")
            ticker.update(done=len(started), what=what)
            started.append(what)

        yield doing


def key_table(rows: list, labels: list, console: Console, title: str, key_width: int = 28, sections=()) -> None:
    """Keys as rows, items (runs, recipes) as columns: `rows` = [(key, [value per item])]; items that do not fit
    the console's width go to further blocks, so the table reads at 80 columns and in a pipe."""
    from rich import box

    key_w = min(key_width, max(len(str(k)) for k, _ in [*rows, ("key", None)]))
    per_block = max(1, (console.width - key_w - 4) // 15)
    for start in range(0, len(labels), per_block):
        block = list(range(start, min(start + per_block, len(labels))))
        span = labels[block[0]] if len(block) == 1 else f"{labels[block[0]]}–{labels[block[-1]]}"
        out = Table(
            box=box.SIMPLE_HEAD,
            title_justify="left",
            title=title if per_block >= len(labels) else f"{title}: {span} of {len(labels)}",
        )
        out.add_column("", max_width=key_w, overflow="fold")
        for i in block:
            out.add_column(labels[i], max_width=14, overflow="fold")
        for key, values in rows:
            out.add_row(str(key), *[values[i] for i in block], end_section=key in sections)
        console.print(out)


def print_recommendations(
    top, targets: dict, elements=(), columns=(), n: int = 5, console: Console | None = None
) -> None:
    """The top recipes, one column each: the `elements` they hold (>= 0.05 wt% in any of them), the recipe's
    `columns` (categoricals, process numbers, schedules), predicted value ± σ, chance within tolerance, cost,
    in domain (and the ground truth on demo data)."""
    console = console or Console()
    if not len(top):
        console.print(f"[yellow]no feasible recipe for {targets}[/yellow]")
        return
    shown = top.head(n)
    # every element any recipe of the file holds (>= 0.05 wt%), so the screen never hides what the CSV varies
    rows = [(f"{el} wt%", [f"{x:.2f}" for x in shown[el]]) for el in elements if el in top and top[el].max() >= 0.05]
    for c in columns:
        if c in shown:
            rows.append(
                (c, ["—" if pd.isna(x) or x == "" else f"{x:g}" if isinstance(x, float) else str(x) for x in shown[c]])
            )
    recipe_end = rows[-1][0] if rows else None
    for t in targets:
        rows.append((f"{t} pred ± σ", [f"{p:.1f} ± {s:.1f}" for p, s in zip(shown[f"{t}_pred"], shown[f"{t}_std"])]))
        if f"{t}_truth" in shown:
            rows.append((f"{t} ground truth", [f"{x:.1f}" for x in shown[f"{t}_truth"]]))
    for key, col, fmt in (
        ("p_hit", "p_hit", "{:.2f}"),
        ("cost index", "cost_index", "{:.3f}"),
        ("in domain", "in_domain", "{}"),
    ):
        if col in shown:
            rows.append((key, [fmt.format(x) for x in shown[col]]))
    title = (
        f"recommended recipes for {', '.join(f'{t} {v:g}' for t, v in targets.items())} "
        f"(#1–#{len(shown)} of the {len(top)} in recommendations.csv)"
    )
    key_table(rows, [f"#{r}" for r in shown["rank"]], console, title, sections=(recipe_end,))


class TrainingProgress:
    """A transient rich bar for train.fit_property_model: grow(n) adds work, step(what) returns a tick that
    marks one unit done and says what it was."""

    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.__enter__()
        self.task = self.bar.add_task(f"training {self.label}", total=0)
        self.ticker = LogTicker(f"training {self.label}")
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def grow(self, total: int) -> None:
        self.bar.update(self.task, total=self.bar.tasks[0].total + total)
        self.ticker.update(total=self.bar.tasks[0].total)

    def say(self, what: str) -> None:
        self.bar.update(self.task, description=f"{self.label}: {what}")

    def step(self, what: str):
        def tick(k):
            self.bar.update(self.task, advance=1, description=f"{self.label}: {what} {k}")
            self.ticker.update(advance=1, what=f"{what} {k}")

        return tick
