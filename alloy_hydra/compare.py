"""Compare runs by what differs in their configs.

    python -m alloy_hydra.compare PATH [PATH ...] [--csv out.csv] [--markdown out.md] [--all]

PATH is a run dir (it has .hydra/config.yaml) or a sweep dir (all its jobs). The table shows only the config
keys whose values differ between the runs (a key a run does not have shows as "—"), beside each run's metrics.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from .io import job_dirs

MISSING = "—"
KEY_METRICS = ["status", "generator_used", "qc_pass", "tstr_r2", "real_only_r2", "cv_mae", "holdout_r2", "holdout_mae",
               "baseline_ridge_r2", "baseline_gbm_r2", "complexity", "physics_pass", "design_hit_rate"]


def run_dirs(paths) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if (p / ".hydra" / "config.yaml").exists():
            out.append(p)
        else:
            found = [q for q in job_dirs(p) if q != p]
            if not found:
                raise FileNotFoundError(f"{p}: neither a run dir nor a sweep dir (no .hydra/config.yaml found)")
            out += found
    return out


def flatten(d, prefix="") -> dict:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(d, list):
        out[prefix[:-1]] = json.dumps(d)
    else:
        out[prefix[:-1]] = d
    return out


def read_run(run: Path) -> tuple[dict, dict, dict]:
    """A run dir's config (unresolved, as a dict), metrics.json and status.json ({} where absent)."""
    cfg = OmegaConf.to_container(OmegaConf.load(run / ".hydra" / "config.yaml"), resolve=False)
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    status = json.loads((run / "status.json").read_text()) if (run / "status.json").exists() else {}
    return cfg, metrics, status


def run_record(run: Path) -> tuple[dict, dict]:
    cfg, metrics, status = read_run(run)
    metrics = {"status": status.get("status", "unknown"), **metrics}
    if status.get("error"):
        metrics["error"] = status["error"]
    return flatten(cfg), metrics


def compare(paths, all_metrics: bool = False) -> pd.DataFrame:
    runs = run_dirs(paths)
    records = [run_record(r) for r in runs]
    keys = sorted(set().union(*(c.keys() for c, _ in records)))
    differing = [k for k in keys
                 if len({json.dumps(c.get(k, MISSING), sort_keys=True, default=str) for c, _ in records}) > 1]
    rows = []
    for run, (c, m) in zip(runs, records):
        row = {"run": str(run)}
        row.update({k: c.get(k, MISSING) for k in differing})
        wanted = list(m) if all_metrics else [k for k in KEY_METRICS if k in m] + (["error"] if "error" in m else [])
        row.update({f"metric:{k}": m.get(k, MISSING) for k in wanted})
        rows.append(row)
    return pd.DataFrame(rows).fillna(MISSING)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.compare", description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--csv")
    ap.add_argument("--markdown")
    ap.add_argument("--all", action="store_true", help="every metric, not only the key ones")
    a = ap.parse_args(argv)
    console = Console()
    try:
        table = compare(a.paths, a.all)
    except FileNotFoundError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    if a.csv:
        table.to_csv(a.csv, index=False)
    if a.markdown:
        Path(a.markdown).write_text(table.to_markdown(index=False) if _has_tabulate() else _markdown(table))
    out = Table(title=f"{len(table)} runs · config keys that differ · metrics")
    for c in table.columns:
        out.add_column(c.replace("metric:", ""), style="cyan" if c.startswith("metric:") else None)
    for _, r in table.iterrows():
        out.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r])
    console.print(out)
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


def _markdown(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in df.itertuples(index=False))


if __name__ == "__main__":
    sys.exit(main())
