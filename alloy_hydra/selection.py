"""Which model a target uses, among several runs: the one rule behind the sweep report's `chosen` / `committee`
columns and design.models (and anything that picks models later, such as a registry).

Per target: physics pass first (pass > no applicable check > fail), then the lowest grouped-CV MAE on the real
train cards. The holdout never decides: it is reported once, after the choice (and for a committee, the
committee's own figure on the holdout its members share: `committee_holdout`). The committee is the chosen run
with every other run of the same configuration (regressor, configured generator, training data: in practice the
seeds of a sweep) and the same physics verdict; `split.seed` is apart from the model seed, so they all hold out
the same groups.
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
        "cv_mae": metrics.get("cv_mae"),
        "holdout_r2": metrics.get("holdout_r2"),
    }


def _neg(value) -> float:
    """-value, for ranking a lower-is-better figure first (missing: last)."""
    value = pd.to_numeric(value, errors="coerce")
    return -float(value) if pd.notna(value) else -np.inf


def choose(runs: pd.DataFrame) -> pd.DataFrame:
    """runs: one row per model (columns target, physics_pass, cv_mae and the CONFIGURATION keys present).
    Returns the rows with boolean `chosen` (one per target) and `committee` columns, and `order`: the rank
    within the target (0 = chosen)."""
    out = runs.assign(chosen=False, committee=False, order=0)
    for _, part in out.groupby("target", sort=False):
        rank = part["physics_pass"].map(physics_rank)
        key = pd.DataFrame({"p": rank, "cv": part["cv_mae"].map(_neg) if "cv_mae" in part else -np.inf})
        ranked = key.sort_values(["p", "cv"], ascending=False, kind="stable").index
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


def committee_holdout(runs: list[Path]) -> dict | None:
    """A committee's own figures on the holdout its members share (R², MAE, RMSE, bias, σ coverage of the
    committee's mean and σ), None for a single run. Members that do not hold out the same groups (runs of an
    older version, which drew the holdout with the model seed) have no shared holdout: a ConfigError says so."""
    import json

    from . import train
    from .model import Committee, Model

    if len(runs) < 2:
        return None
    held = [sorted(json.loads((Path(r) / "split.json").read_text())["holdout_groups"]) for r in runs]
    if any(h != held[0] for h in held[1:]):
        raise ConfigError(
            f"the committee of {runs[0]} holds out different groups per member (runs made before split.seed "
            "existed): no shared holdout to score it on; retrain with one split.seed"
        )
    models = [Model.load(Path(r) / "model.json") for r in runs]
    cfg, _, _ = read_run(runs[0])
    id_cols = (cfg.get("data") or {}).get("id_columns") or []
    view = pd.read_csv(Path(runs[0]) / "view.csv", dtype={c: str for c in id_cols}, keep_default_na=True)
    hold = view[view["split"] == "holdout"].reset_index(drop=True)
    y = hold[models[0].target].to_numpy(float)
    mean, std, _, _ = Committee(models).predict(hold)
    m = train.metrics(y, mean)
    s = train.sigma_checks(mean - y, std)
    return {
        "holdout_r2": m["r2"],
        "holdout_mae": m["mae"],
        "holdout_rmse": m["rmse"],
        "holdout_bias": float(np.mean(mean - y)),
        "coverage_1sigma": s["coverage_1sigma"],
        "coverage_2sigma": s["coverage_2sigma"],
        "n_holdout_rows": int(len(y)),
        "members": len(runs),
    }
