"""Which model a target uses, among several runs: the one rule behind the sweep report's `chosen` / `committee`
columns and design.models (and anything that picks models later, such as a registry).

Per target: physics pass first (pass > no applicable check > fail), then the best holdout R². The committee is
the chosen run with every other run of the same configuration (regressor, configured generator, training data:
in practice the seeds of a sweep) and the same physics verdict. Selecting on the holdout makes the chosen
model's holdout figure optimistic; the CV figures are not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError
from .io import job_dirs, read_run

CONFIGURATION = ("method", "generator", "train_data")  # runs that differ only in other keys (seed) are a committee


def physics_rank(verdict) -> int:
    """Order of physics verdicts when models are compared: pass (2) before no applicable check (1) before fail (0).
    Accepts True/False/None and their CSV forms (1.0 / 0.0 / NaN, "True" / "False")."""
    if verdict is True or verdict == 1 or str(verdict) == "True":
        return 2
    if verdict is False or (isinstance(verdict, (int, float)) and verdict == 0) or str(verdict) == "False":
        return 0
    return 1


def describe(cfg: dict, metrics: dict, info: dict | None = None) -> dict:
    """What the rule reads of one run: its metrics.json, else its config (as a dict), else its model's info."""
    info = info or {}

    def pick(metric, node, key=None):
        return metrics.get(metric, (cfg.get(node) or {}).get(key or "name", info.get(metric)))

    return {
        "target": pick("target", "target"),
        "method": pick("regressor", "regressor"),
        "generator": pick("generator", "generator"),
        "train_data": pick("train_data", "train", "data"),
        "physics_pass": metrics.get("physics_pass"),
        "holdout_r2": metrics.get("holdout_r2"),
    }


def _r2(value) -> float:
    value = pd.to_numeric(value, errors="coerce")
    return float(value) if pd.notna(value) else -np.inf


def choose(runs: pd.DataFrame) -> pd.DataFrame:
    """runs: one row per model (columns target, physics_pass, holdout_r2 and the CONFIGURATION keys present).
    Returns the rows with boolean `chosen` (one per target) and `committee` columns, and `order`: the rank
    within the target (0 = chosen)."""
    out = runs.assign(chosen=False, committee=False, order=0)
    for _, part in out.groupby("target", sort=False):
        rank = part["physics_pass"].map(physics_rank)
        key = pd.DataFrame({"p": rank, "r2": part["holdout_r2"].map(_r2)})
        ranked = key.sort_values(["p", "r2"], ascending=False, kind="stable").index
        best = ranked[0]
        out.loc[ranked, "order"] = np.arange(len(ranked))
        same = rank == rank[best]
        for col in (c for c in CONFIGURATION if c in part):
            same &= part[col].astype(str) == str(part.at[best, col])
        out.loc[best, "chosen"] = True
        out.loc[same[same].index, "committee"] = True
    return out


def model_runs(paths, column: str = "chosen") -> list[Path]:
    """Run dirs holding a model: each path is a run dir, or a sweep dir whose jobs are searched (its
    model_comparison.csv, when it has `column`, names the runs to load)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    runs = []
    for p in paths:
        p = Path(str(p)).expanduser().resolve()
        if not p.exists():
            raise ConfigError(f"design.models: {p} does not exist")
        if (p / "model.json").exists():
            runs.append(p)
            continue
        chosen = p / "model_comparison.csv"
        if chosen.exists():
            table = pd.read_csv(chosen)
            if column in table and "run_dir" in table:
                runs += [
                    Path(r) if Path(r).is_absolute() else p / r
                    for r in table.loc[table[column].astype(bool), "run_dir"]
                ]
                continue
        runs += job_dirs(p, "model.json")
    if not runs:
        raise ConfigError(f"design.models: no model.json under {paths}")
    return runs


def pick_runs(paths, combine: str = "committee") -> dict[str, list[Path]]:
    """Per target, the run dirs `choose` picks among the runs under `paths`, best first: combine=committee the
    chosen run and the rest of its committee, combine=best the chosen run alone."""
    from .model import Model

    if combine not in ("committee", "best"):
        raise ConfigError(f"design.combine must be committee or best, not {combine!r}")
    rows = []
    for run in model_runs(paths, "committee" if combine == "committee" else "chosen"):
        info = Model.load(run / "model.json")
        cfg, metrics, _ = read_run(run)
        rows.append({**describe(cfg, metrics, info.info), "target": info.target, "run": run})
    picked = choose(pd.DataFrame(rows))
    out = {}
    for target, part in picked.groupby("target", sort=False):
        members = part[part["committee"]] if combine == "committee" else part[part["chosen"]]
        out[target] = list(members.sort_values("order")["run"])
    return out


def as_model(model_files: list):
    """One Model for one file, a Committee of several (the first is the chosen run)."""
    from .model import Committee, Model

    models = [Model.load(f) for f in model_files]
    return models[0] if len(models) == 1 else Committee(models)


def load_models(paths, combine: str = "committee") -> tuple[dict, Path]:
    """Per target, the model `choose` picks among the runs under `paths`; combine=committee: with the rest of
    its committee as one Committee, combine=best: alone. Returns ({target: Model | Committee}, the chosen run
    of the first target)."""
    runs = pick_runs(paths, combine)
    models = {t: as_model([r / "model.json" for r in rs]) for t, rs in runs.items()}
    return models, next(iter(runs.values()))[0]
