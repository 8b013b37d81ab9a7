"""Sweep-level reports, written by a Hydra callback when a multirun ends (also callable on any sweep dir):

- comparison.csv: one row per job: run dir, overrides, status (error), every metrics.json key;
- selected_datasets.json: per target, the generator chosen by the rule below, with the numbers behind it;
- model_comparison.csv: per target and job, the model (method, CV MAE, holdout MAE/R², complexity, physics) and
  its ridge / gbm baselines on the same holdout, with the `chosen` model per target that design.models loads;
- a rich table and plots/sweep_holdout_r2.png.

Generator rule (select_datasets): grouped CV on the train groups, never the holdout — among generators whose QC
passes (checks that can fail only), the lowest grouped-CV MAE of the trained model on the real train cards
(cv_mae); augmentation is kept only if it beats the sweep's real-only jobs (generator=none, same regressor),
otherwise `none` is selected and the report says so. The holdout utility is reported beside it.
Model rule: alloy_hydra.selection (physics pass first, then the best holdout R²; the same rule design.models
applies to a list of runs).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from . import selection
from .io import job_dirs, read_run, write_json

log = logging.getLogger(__name__)


def jobs(sweep_dir: Path) -> pd.DataFrame:
    rows = []
    for run in job_dirs(sweep_dir):
        overrides = (
            OmegaConf.load(run / ".hydra" / "overrides.yaml") if (run / ".hydra" / "overrides.yaml").exists() else []
        )
        cfg, metrics, status = read_run(run)
        rule = selection.describe(cfg, metrics)
        rows.append(
            {
                "run_dir": str(run.relative_to(sweep_dir)),
                "overrides": " ".join(overrides),
                "status": status.get("status", "missing"),
                "error": status.get("error", ""),
                "target": rule["target"],
                "generator": rule["generator"],
                "regressor": rule["method"],
                **{k: v for k, v in metrics.items() if k not in ("target", "generator", "regressor")},
                "train_data": rule["train_data"],
            }
        )
    return pd.DataFrame(rows)


def _with(table: pd.DataFrame, cols) -> pd.DataFrame:
    """The table with every named column present (NaN where the jobs did not produce it)."""
    return table.assign(**{c: np.nan for c in cols if c not in table})


_SHOWN = ["generator", "regressor", "qc_pass", "cv_mae", "n_jobs", "tstr_r2", "aug_r2", "real_only_r2"]


def _choice(synth: pd.DataFrame, base_by_regressor: dict) -> dict:
    """The chosen generator among one target's QC-passing candidates, or none, and why."""
    passing = synth[synth["qc_pass"]]
    if not len(synth):
        return dict(chosen_method="none", reason="no synthetic-data job with a CV score for this target")
    if not len(passing):
        return dict(chosen_method="none", reason="no generator passes QC on the checks that can fail")
    best = passing.sort_values("cv_mae", kind="stable").iloc[0]
    base = base_by_regressor.get(best["regressor"])
    if base is None:
        return dict(
            chosen_method="none",
            best_generator=best["generator"],
            reason=f"no generator=none job with regressor {best['regressor']} to show that augmentation "
            "helps: add generator=none to the sweep",
        )
    if best["cv_mae"] >= base:
        return dict(
            chosen_method="none",
            best_generator=best["generator"],
            reason=f"augmentation does not help: {best['generator']} grouped-CV MAE {best['cv_mae']:.4g} "
            f">= real-only {base:.4g}",
        )
    return dict(
        chosen_method=best["generator"],
        cv_mae=float(best["cv_mae"]),
        run_dir=best["run_dir"],
        reason=f"{best['generator']}: lowest grouped-CV MAE among QC-passing generators "
        f"({best['cv_mae']:.4g} vs real-only {base:.4g})",
        holdout_after_choice={k: _num(best[k]) for k in ("tstr_r2", "aug_r2", "real_only_r2")},
    )


def select_datasets(table: pd.DataFrame) -> dict:
    """Per target, the generator the sweep supports, decided on grouped CV of the train groups, never on the
    holdout: each job's `cv_mae` is its model's grouped-CV MAE on the real train cards (synthetic rows grouped with
    the card they came from, so no fold scores near-copies of its training rows), averaged over the job's seeds.
    Among generators whose QC passes, the lowest; augmentation is kept only if it beats the real-only jobs
    (generator=none, same regressor) of the sweep. The holdout utility (tstr_r2, aug_r2, real_only_r2) is
    reported beside it, once, after the choice."""
    out = {}
    table = _with(table, ["qc_pass", "cv_mae", "tstr_r2", "aug_r2", "real_only_r2", "regressor"])
    done = table[table["status"] == "complete"] if len(table) else table
    for target, part in done.groupby("target") if len(done) else []:
        part = part[part["cv_mae"].notna()]
        by = part.groupby(["generator", "regressor"], dropna=False, sort=False)
        per = by.agg(
            cv_mae=("cv_mae", "mean"),
            n_jobs=("cv_mae", "size"),
            qc_pass=("qc_pass", lambda v: bool(len(v)) and all(x is True or x == 1.0 for x in v)),
            tstr_r2=("tstr_r2", "mean"),
            aug_r2=("aug_r2", "mean"),
            real_only_r2=("real_only_r2", "mean"),
            run_dir=("run_dir", "first"),
        ).reset_index()
        synth = per[per["generator"] != "none"]
        real = per[per["generator"] == "none"]
        base = {r["regressor"]: float(r["cv_mae"]) for _, r in real.iterrows()}
        out[target] = {
            "rule": "lowest grouped-CV MAE (cv_mae, train groups) among QC-passing generators; kept only if below "
            "the real-only jobs' cv_mae with the same regressor",
            "decided_on": "grouped CV of the train groups; the holdout columns are reported, never decide",
            "candidates": synth[_SHOWN].to_dict("records") if len(synth) else [],
            "real_only_cv_mae": base,
            **_choice(synth, base),
        }
    return out


def _num(v):
    return None if v is None or pd.isna(v) else float(v)


_MODEL_METRICS = ["cv_mae", "holdout_mae", "holdout_r2", "complexity", "physics_pass"]  # in the table's order
_BASELINES = [f"baseline_{b}_{m}" for b in ("ridge", "gbm") for m in ("r2", "mae")]
_MODEL_TABLE = "target property method generator cv_mae holdout_mae holdout_r2 complexity physics_pass run_dir".split()


def _model_rows(j: pd.Series) -> list[dict]:
    """One job's model and its two baselines (ridge, gbm), scored on the same holdout."""
    base = {
        "target": j["target"],
        "property": j["target"],
        "generator": j["generator"],
        "run_dir": j["run_dir"],
        "train_data": j.get("train_data"),
    }
    model = {"method": j["regressor"], **{k: j.get(k) for k in _MODEL_METRICS}, "baseline": False}
    rows = [{**base, **model}]
    for b in ("ridge", "gbm"):
        rows.append(
            {
                **base,
                "method": f"baseline_{b}",
                "cv_mae": None,
                "holdout_mae": j.get(f"baseline_{b}_mae"),
                "holdout_r2": j.get(f"baseline_{b}_r2"),
                "complexity": None,
                "physics_pass": None,
                "baseline": True,
            }
        )
    return rows


def model_table(table: pd.DataFrame) -> pd.DataFrame:
    table = _with(table, _MODEL_METRICS + _BASELINES)
    done = table[(table["status"] == "complete") & table["holdout_r2"].notna()] if len(table) else table
    mt = pd.DataFrame([row for _, j in done.iterrows() for row in _model_rows(j)])
    if not len(mt):
        return pd.DataFrame(columns=[*_MODEL_TABLE, "baseline", "chosen", "committee"])
    picked = selection.choose(mt[~mt["baseline"]])
    mt["chosen"] = mt["committee"] = False
    mt.loc[picked.index, ["chosen", "committee"]] = picked[["chosen", "committee"]]
    return mt.drop(columns="train_data")


def write_reports(sweep_dir, console=None) -> int:
    """Write the sweep reports; returns the number of failed jobs."""
    from rich.console import Console

    from .report import key_table

    sweep_dir = Path(sweep_dir)
    table = jobs(sweep_dir)
    table.drop(columns="train_data", errors="ignore").to_csv(sweep_dir / "comparison.csv", index=False)
    selected = select_datasets(table)
    write_json(sweep_dir / "selected_datasets.json", selected)
    models = model_table(table)
    models.to_csv(sweep_dir / "model_comparison.csv", index=False)
    failed = int((table["status"] != "complete").sum()) if len(table) else 0
    console = console or Console()
    console.print(f"sweep {sweep_dir}: {len(table)} jobs, {failed} failed", soft_wrap=True, highlight=False)
    labels = [
        f"job {n}" if n.isdigit() else f"job {i}"  # Hydra's job number, from the dir name
        for i, n in enumerate(str(r).split("_", 1)[0] for r in (table["run_dir"] if len(table) else []))
    ]
    for label, run in zip(labels, table["run_dir"] if len(table) else []):
        console.print(f"{label}: {run}", soft_wrap=True, highlight=False)
    cols = [
        c
        for c in (
            "status",
            "target",
            "generator",
            "generator_used",
            "regressor",
            "qc_pass",
            "tstr_r2",
            "real_only_r2",
            "holdout_r2",
            "design_hit_rate",
            "error",
        )
        if c in table
    ]
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)[:60]
    if len(table):  # keys as rows, jobs as columns: readable at 80 columns and in a pipe
        key_table([(c, [cell(v) for v in table[c]]) for c in cols], labels, console, "sweep jobs")
    for target, s in selected.items():
        console.print(f"{target}: generator [bold]{s['chosen_method']}[/bold] — {s['reason']}")
    if len(table) and "holdout_r2" in table and table["holdout_r2"].notna().any():
        _plot(table, sweep_dir / "plots" / "sweep_holdout_r2.png")
    return failed


def _plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    piv = table.pivot_table(index="target", columns="generator", values="holdout_r2", aggfunc="max")
    ax = piv.plot.bar(figsize=(7, 4))
    ax.set_ylabel("holdout R² (real groups)")
    ax.set_title("holdout R² per target × generator")
    plt.tight_layout()
    plt.savefig(path, dpi=90)
    plt.close("all")


TOTAL_FILE = ".jobs_total"  # in the sweep dir: how many jobs the sweep has (for "k of N done" in the jobs)


def n_jobs(config) -> int:
    """Jobs in a multirun: the product of the sweep values per key, from hydra.sweeper.params and the command
    line's comma / choice / range overrides (the command line wins for a key in both)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    sizes = {}
    for o in OverridesParser.create().parse_overrides([*overrides, *config.hydra.overrides.task]):
        sizes[o.key_or_group] = len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
    return int(np.prod(list(sizes.values()))) if sizes else 1


def jobs_done(sweep_dir: Path) -> int:
    """Jobs of the sweep that have ended (complete or failed)."""
    ended = 0
    for status in sweep_dir.glob("*/status.json"):
        try:
            ended += json.loads(status.read_text()).get("status") in ("complete", "failed")
        except (OSError, ValueError):  # being written by a running job
            continue
    return ended


class SweepReport(Callback):
    """Hydra callback: progress while a multirun runs (jobs done of total, on screen and in each job's log) and
    the sweep reports at its end; exits non-zero when any job failed."""

    def __init__(self, exit_on_failure: bool = True):
        self.exit_on_failure = exit_on_failure

    def on_multirun_start(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        total = n_jobs(config)
        (sweep_dir / TOTAL_FILE).write_text(str(total))
        log.info("sweep: %d jobs into %s", total, sweep_dir)

    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        total_file = sweep_dir / TOTAL_FILE
        if total_file.exists():
            log.info("sweep: %d of %s jobs done", jobs_done(sweep_dir), total_file.read_text().strip())

    def on_multirun_end(self, config, **kwargs) -> None:
        failed = write_reports(Path(config.hydra.sweep.dir))
        if failed and self.exit_on_failure:
            log.error("%d job(s) failed; their run dirs hold status.json with the error", failed)
            sys.exit(1)
