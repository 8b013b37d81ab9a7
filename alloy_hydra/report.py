"""Console output: short rich summaries of a run."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

SUMMARY_KEYS = ("rows_in", "rows_kept", "rows_rejected", "view_rows", "view_groups", "target_clipped",
                "n_train_rows", "n_holdout_rows", "generator", "generator_used", "n_synthetic", "qc_pass",
                "tstr_r2", "real_only_r2", "regressor", "complexity", "cv_mae", "holdout_mae", "holdout_r2",
                "baseline_ridge_r2", "baseline_gbm_r2", "holdout_mae_in_domain", "holdout_mae_out_domain",
                "coverage_1sigma", "coverage_2sigma", "sigma_error_spearman", "physics_pass",
                "physics_checks_applicable", "sr_time_cap_fired", "n_recommendations", "best_distance",
                "design_hit_rate")


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
        verdict = "[dim]cannot fail[/dim]" if c["cannot_fail"] else ("[green]pass[/green]" if c["pass"] else
                                                                     "[red]FAIL[/red]")
        table.add_row(c["check"], "—" if v is None else f"{v:.4g}", f"{c['op']} {c['threshold']:g}", verdict)
    console.print(table)
    console.print(f"overall: {'[green]PASS' if acc['overall_pass'] else '[red]FAIL'}[/] "
                  f"({acc['n_checks_counted']} checks that can fail)")


def print_recommendations(top, targets: dict, n: int = 8, console: Console | None = None) -> None:
    console = console or Console()
    if not len(top):
        console.print(f"[yellow]no feasible recipe for {targets}[/yellow]")
        return
    table = Table(title=f"recommended recipes for {', '.join(f'{t} {v:g}' for t, v in targets.items())}")
    cols = ["rank", "Mg", "Mn", "casting", "cold_reduction_pct", "homog_schedule", "recryst_schedule"]
    cols = [c for c in cols if c in top]
    for c in cols + [f"{t} pred ± σ" for t in targets] + ["cost", "in domain"] + \
            (["truth"] if any(f"{t}_truth" in top for t in targets) else []):
        table.add_column(c)
    for _, r in top.head(n).iterrows():
        row = [str(r[c]) for c in cols] + [f"{r[f'{t}_pred']:.1f} ± {r[f'{t}_std']:.1f}" for t in targets]
        row += [f"{r['cost_index']:.3f}", str(r["in_domain"])]
        if f"{next(iter(targets))}_truth" in top:
            row.append(" ".join(f"{r[f'{t}_truth']:.1f}" for t in targets))
        table.add_row(*row)
    console.print(table)
