"""Stage audit: the model on the held-out groups (error, σ coverage, in-domain flag vs error), the baselines on
the same cards, permutation importance, and the physics signs (checks the model cannot fail are reported as
not applicable, never as a pass)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import physics, plots
from .. import train as train_mod
from ..io import write_json
from ..model import predict_json
from ..regress import FixedModel
from ..schema import GROUP_COL
from .split import Split
from .train import Trained


def run(cfg, run_dir: Path, metrics: dict, split: Split, train: Trained) -> dict:
    """Returns the validation report (validation_report.json)."""
    model, target = train.model, cfg.target.name
    physics_report = physics.audit(lambda Xp: predict_json(model.main, Xp), train.pert, cfg.train.physics_min_fraction)
    hold = split.holdout
    if not len(hold):  # split.holdout_fraction=0: every card trained; grouped CV is the only validation
        report_ = {
            "target": target,
            "unit": cfg.target.unit,
            "holdout": None,
            "cv": train.cv,
            "physics": physics_report,
            "model": model.info,
            "note": "no holdout (split.holdout_fraction=0): every card trained; see cv for the validation",
        }
        write_json(run_dir / "validation_report.json", report_)
        metrics.update(
            physics_pass=physics_report["pass"],
            physics_checks_applicable=physics_report["n_applicable"],
            sr_time_cap_fired=model.info.get("sr_time_cap_fired", 0),
        )
        return report_
    Xh = model.featuriser.transform(hold)
    y = hold[target].to_numpy(float)
    mean, std, in_dom, dist = model.predict(hold, X=Xh.to_numpy(float))
    main = train_mod.metrics(y, mean)
    trust = train_mod.sigma_checks(mean - y, std) | train_mod.domain_check(y, mean, in_dom)
    base = {k: train_mod.metrics(y, b.predict(Xh)) for k, b in train.baselines.items()}
    _importance(model, Xh, y, cfg.seed, run_dir / "feature_importance.csv")
    (run_dir / "plots").mkdir(exist_ok=True)
    curves = {cfg.regressor.name: (mean, std), **{k: (train.baselines[k].predict(Xh), None) for k in ("gbm", "ridge")}}
    plots.parity(y, curves, target, cfg.target.unit, run_dir / "plots" / "parity.png")
    report_ = {
        "target": target,
        "unit": cfg.target.unit,
        "holdout": {**main, **trust},
        "baselines_holdout": base,
        "cv": train.cv,
        "physics": physics_report,
        "per_class": _per_class(hold[GROUP_COL], y, mean, std).to_dict("records"),
        "model": model.info,
        "note": "holdout = real groups never seen by the generator or the regressor",
    }
    write_json(run_dir / "validation_report.json", report_)
    metrics.update({f"holdout_{k}": main[k] for k in ("mae", "rmse", "r2", "mape")})
    metrics.update(
        physics_pass=physics_report["pass"],
        coverage_2sigma=trust["coverage_2sigma"],
        physics_checks_applicable=physics_report["n_applicable"],
        coverage_1sigma=trust["coverage_1sigma"],
        sigma_error_spearman=trust["spearman_sigma_abs_error"],
    )
    metrics.update({f"holdout_{k}": trust[k] for k in ("in_domain_share", "mae_in_domain", "mae_out_domain")})
    metrics["sr_time_cap_fired"] = model.info.get("sr_time_cap_fired", 0)
    metrics.update({f"baseline_{b}_{m}": base[b][m] for m in ("r2", "mae") for b in ("ridge", "gbm")})
    return report_


def _per_class(groups, y, mean, std) -> pd.DataFrame:
    """Holdout error and mean σ per alloy group."""
    frame = pd.DataFrame({"group": groups, "y": y, "pred": mean, "std": std})
    return (
        frame.assign(abs_err=lambda d: (d.y - d.pred).abs())
        .groupby("group")
        .agg(n=("y", "size"), mae=("abs_err", "mean"), mean_std=("std", "mean"))
        .reset_index()
    )


def _importance(model, Xh: pd.DataFrame, y, seed: int, path: Path) -> None:
    """Permutation importance of each input on the holdout (MAE increase), feature_importance.csv."""
    from sklearn.inspection import permutation_importance

    est = FixedModel(model.main).fit(Xh, y)
    imp = permutation_importance(est, Xh, y, n_repeats=5, random_state=seed, scoring="neg_mean_absolute_error")
    table = pd.DataFrame({"feature": Xh.columns, "importance_mae": imp.importances_mean, "std": imp.importances_std})
    table.sort_values("importance_mae", ascending=False).to_csv(path, index=False)
