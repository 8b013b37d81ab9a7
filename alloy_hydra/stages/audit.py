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
    trained = train
    from sklearn.inspection import permutation_importance

    model, target = trained.model, cfg.target.name
    physics_report = physics.audit(
        lambda Xp: predict_json(model.main, Xp), trained.pert, cfg.train.physics_min_fraction
    )
    hold = split.holdout
    Xh = model.featuriser.transform(hold)
    y = hold[target].to_numpy(float)
    mean, std, in_dom, dist = model.predict(hold, X=Xh.to_numpy(float))
    main = train_mod.metrics(y, mean)
    trust = train_mod.sigma_checks(mean - y, std) | train_mod.domain_check(y, mean, in_dom)
    base = {k: train_mod.metrics(y, b.predict(Xh)) for k, b in trained.baselines.items()}
    per_class = (
        pd.DataFrame({"group": hold[GROUP_COL], "y": y, "pred": mean, "std": std})
        .assign(abs_err=lambda d: (d.y - d.pred).abs())
        .groupby("group")
        .agg(n=("y", "size"), mae=("abs_err", "mean"), mean_std=("std", "mean"))
        .reset_index()
    )
    imp = permutation_importance(
        FixedModel(model.main).fit(Xh, y), Xh, y, n_repeats=5, random_state=cfg.seed, scoring="neg_mean_absolute_error"
    )
    pd.DataFrame(
        {"feature": Xh.columns, "importance_mae": imp.importances_mean, "std": imp.importances_std}
    ).sort_values("importance_mae", ascending=False).to_csv(run_dir / "feature_importance.csv", index=False)
    (run_dir / "plots").mkdir(exist_ok=True)
    plots.parity(
        y,
        {
            cfg.regressor.name: (mean, std),
            "gbm": (trained.baselines["gbm"].predict(Xh), None),
            "ridge": (trained.baselines["ridge"].predict(Xh), None),
        },
        target,
        cfg.target.unit,
        run_dir / "plots" / "parity.png",
    )
    report_ = {
        "target": target,
        "unit": cfg.target.unit,
        "holdout": {**main, **trust},
        "baselines_holdout": base,
        "cv": trained.cv,
        "physics": physics_report,
        "per_class": per_class.to_dict("records"),
        "model": model.info,
        "note": "holdout = real groups never seen by the generator or the regressor",
    }
    write_json(run_dir / "validation_report.json", report_)
    metrics.update(
        holdout_mae=main["mae"],
        holdout_rmse=main["rmse"],
        holdout_r2=main["r2"],
        holdout_mape=main["mape"],
        physics_pass=physics_report["pass"],
        coverage_2sigma=trust["coverage_2sigma"],
        physics_checks_applicable=physics_report["n_applicable"],
        coverage_1sigma=trust["coverage_1sigma"],
        sigma_error_spearman=trust["spearman_sigma_abs_error"],
        holdout_in_domain_share=trust["in_domain_share"],
        holdout_mae_in_domain=trust["mae_in_domain"],
        holdout_mae_out_domain=trust["mae_out_domain"],
        sr_time_cap_fired=model.info.get("sr_time_cap_fired", 0),
        baseline_ridge_r2=base["ridge"]["r2"],
        baseline_gbm_r2=base["gbm"]["r2"],
        baseline_ridge_mae=base["ridge"]["mae"],
        baseline_gbm_mae=base["gbm"]["mae"],
    )
    return report_
