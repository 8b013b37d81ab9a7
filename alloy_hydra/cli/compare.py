"""Compare runs by what differs in their configs.

    python -m alloy_hydra.compare PATH [PATH ...] [--csv out.csv] [--markdown out.md] [--all]

PATH is a run dir (it has .hydra/config.yaml) or a sweep dir (all its jobs). The table shows only the config
keys whose values differ between the runs (a key a run does not have shows as "—"), beside each run's metrics.
A config group whose option differs (regressor=operon vs hinge) is one line, `regressor: operon → hinge`; its
sub-keys show only where they were overridden on the command line. Keys are rows and runs are columns, so the
table reads at 80 columns and in a pipe (runs that do not fit go to the next block). Runs that differ only in
`seed` are a committee: one more column gives the committee's own figures on the holdout its members share.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from rich.console import Console

from ..io import job_dirs, read_run
from ..report import key_table

MISSING = "—"
KEY_METRICS = [
    "status",
    "generator_used",
    "qc_pass",
    "tstr_r2",
    "real_only_r2",
    "cv_mae",
    "holdout_r2",
    "holdout_mae",
    "baseline_ridge_r2",
    "baseline_gbm_r2",
    "complexity",
    "physics_pass",
    "design_hit_rate",
]


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


def run_record(run: Path) -> tuple[dict, dict]:
    cfg, metrics, status = read_run(run)
    metrics = {"status": status.get("status", "unknown"), **metrics}
    if status.get("error"):
        metrics["error"] = status["error"]
    return flatten(cfg), metrics


def group_choices(run: Path) -> tuple[dict, set]:
    """({config node: option} of the run's config groups, e.g. {"regressor": "hinge", "generator.candidate":
    "jitter"}, the keys overridden on its command line) from Hydra's records in .hydra/."""
    hydra_file, over_file = run / ".hydra" / "hydra.yaml", run / ".hydra" / "overrides.yaml"
    choices = {}
    if hydra_file.exists():
        raw = OmegaConf.to_container(OmegaConf.load(hydra_file).hydra.runtime.choices)
        for group, option in raw.items():
            if not group.startswith("hydra/") and group != "sweeps" and option is not None:
                choices[group.split("@", 1)[1] if "@" in group else group] = str(option)
    overridden = set()
    for o in (OmegaConf.to_container(OmegaConf.load(over_file)) if over_file.exists() else []) or []:
        overridden.add(str(o).split("=", 1)[0].lstrip("+~"))
    return choices, overridden


def _same(values) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) <= 1


def compare(paths, all_metrics: bool = False) -> pd.DataFrame:
    runs = run_dirs(paths)
    records = [run_record(r) for r in runs]
    groups = [group_choices(r) for r in runs]
    keys = sorted(set().union(*(c.keys() for c, _ in records)))
    differing = [k for k in keys if not _same(c.get(k, MISSING) for c, _ in records)]
    # a group whose option differs is one column; its sub-keys only where a run overrode them
    nodes = sorted({n for ch, _ in groups for n in ch}, key=len)
    changed = []
    for n in nodes:
        if not any(n.startswith(o + ".") for o in changed) and not _same(ch.get(n, MISSING) for ch, _ in groups):
            changed.append(n)
    overridden = set().union(*(o for _, o in groups)) if groups else set()
    differing = changed + [k for k in differing if k in overridden or not any(k.startswith(n + ".") for n in changed)]
    rows = []
    for run, (c, m), (ch, _) in zip(runs, records, groups):
        row = {"run": str(run)}
        row.update({k: ch.get(k, MISSING) if k in changed else c.get(k, MISSING) for k in differing})
        wanted = list(m) if all_metrics else [k for k in KEY_METRICS if k in m] + (["error"] if "error" in m else [])
        row.update({f"metric:{k}": m.get(k, MISSING) for k in wanted})
        rows.append(row)
    rows += committee_rows(runs, records, differing)
    return pd.DataFrame(rows)


def committee_rows(runs, records, differing) -> list[dict]:
    """One more column per committee among the runs — complete runs whose configs differ in `seed` only (the
    members design.combine=committee averages) — with the committee's own figures on the holdout its members share
    (selection.committee_holdout), not one member's."""
    from ..errors import AlloyHydraError
    from ..selection import committee_holdout

    teams: dict[str, list] = {}
    for run, (c, m) in zip(runs, records):
        if m.get("status") == "complete":
            rest = {k: v for k, v in c.items() if k != "seed"}
            teams.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append((run, c))
    rows = []
    for members in teams.values():
        if len(members) < 2:
            continue
        try:
            figures = committee_holdout([r for r, _ in members])
        except AlloyHydraError:  # members without a shared holdout (runs made before split.seed): no figure
            continue
        seeds = ", ".join(str(c.get("seed")) for _, c in members)
        first = members[0][1]
        row = {"run": f"committee of {len(members)} (seed {seeds})"}
        row.update({k: MISSING if k == "seed" else first.get(k, MISSING) for k in differing})
        row.update({f"metric:{k}": v for k, v in (figures or {}).items() if k.startswith("holdout_")})
        rows.append(row)
    return rows


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
    render(table, console)
    return 0


def _cell(v) -> str:
    return "null" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def render(table: pd.DataFrame, console: Console) -> None:
    """What changed (`key: a → b`), then keys as rows and runs as columns, in blocks that fit the width."""
    config = [c for c in table.columns if c != "run" and not c.startswith("metric:")]
    metrics = [c for c in table.columns if c.startswith("metric:")]
    labels = [f"run {i + 1}" for i in range(len(table))]
    for label, run in zip(labels, table["run"]):
        console.print(f"{label}: {run}", soft_wrap=True, highlight=False)
    if config:
        console.print("changed:", style="bold")
        for c in config:
            values = [_cell(v) for v in table[c]]  # two runs: old → new; more: each run's value in order
            console.print(
                f"  {c}: " + (" → ".join(values) if len(values) == 2 else " | ".join(values)),
                soft_wrap=True,
                highlight=False,
            )
    else:
        console.print("changed: nothing (the runs share every config key)")
    rows = [(c.replace("metric:", ""), [_cell(v) for v in table[c]]) for c in config + metrics]
    key_table(rows, labels, console, "config keys that differ · metrics", sections=(config[-1],) if config else ())


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
