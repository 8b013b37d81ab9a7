"""Validate the models the way design uses them (issue 18): beyond the known alloys and at the frontier, and
whether `in_domain` and sigma say which predictions miss.

    python benchmarks/bench_trust.py [--data uq_al hu2021 demo] [--targets YS UTS] [--models hinge ridge gbm]
                                     [--folds 5] [--frontier 0.8] [overrides ...]

For every model (a regressor config: the whole training procedure of alloy_hydra.train.fit_property_model,
real rows only, so each model gets its own applicability domain and sigma model) two splits of the real cards:

- groups: GroupKFold by alloy / composition group. Out-of-fold: R², MAE; MAE of the cards flagged in domain
  and out of it and the share in; 1σ / 2σ coverage; Spearman ρ of σ with |error|.
- frontier: the groups whose mean target is at or above the `--frontier` quantile of group means are the test
  set, the model is trained on the rest: can it predict stronger alloys than it has seen? MAE, R², bias
  (mean prediction − measured; negative = under-predicts the frontier), share flagged in domain.

The public files come from the dataset cache (`python -m alloy_hydra.datasets fetch uq_al hu2021`).
Formulas are scored with regressor=hinge by default (deterministic; the default operon front's chosen members on
these files are hinge-path members, and operon costs ~3.5 min per fit here); pass --models operon to include it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
DATA = ("uq_al", "hu2021", "demo")  # the public files from the dataset cache (python -m alloy_hydra.datasets fetch)


def fit_predict(cfg, view, tr, te):
    """Train by the pipeline's procedure on view rows tr; (prediction, sigma, in_domain) on rows te."""
    from alloy_hydra import schema, stages

    real = view.iloc[tr].reset_index(drop=True)
    fit = stages.train.fit_model(cfg, real.assign(_cv_group=real[schema.GROUP_COL], is_synthetic=0), real)
    test = view.iloc[te]
    mean, std, inside, _ = fit.model.predict(test)
    return mean, std, inside


def summary(y, mean, std, inside) -> dict:
    from alloy_hydra import train

    m = train.metrics(y, mean)
    s = train.sigma_checks(mean - y, std)
    d = train.domain_check(y, mean, inside)
    r = lambda v, k=2: None if v is None or not np.isfinite(v) else round(float(v), k)
    return {
        "R2": r(m["r2"], 3),
        "MAE": r(m["mae"]),
        "MAE_in": r(d["mae_in_domain"]),
        "MAE_out": r(d["mae_out_domain"]),
        "in_share": r(d["in_domain_share"]),
        "cov1": r(s["coverage_1sigma"]),
        "cov2": r(s["coverage_2sigma"]),
        "rho": r(s["spearman_sigma_abs_error"]),
        "bias": r(float(np.mean(mean - y))),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["uq_al", "hu2021"], choices=sorted(DATA))
    ap.add_argument("--targets", nargs="+", default=["YS", "UTS"])
    ap.add_argument("--models", nargs="+", default=["hinge", "ridge", "gbm"])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--frontier", type=float, default=0.8)
    ap.add_argument("--splits", nargs="+", default=["groups", "frontier"], choices=["groups", "frontier"])
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    from alloy_hydra import clean, schema
    from alloy_hydra.config import compose
    from alloy_hydra.io import read_cards

    rows = []
    for data in a.data:
        window = "wrought" if data != "demo" else "aa5xxx"
        for target in a.targets:
            base = [f"data={data}", f"chem_window={window}", f"target={target}", "generator=none", "summary=false"]
            cfg0 = compose(base)
            path = clean.data_path(cfg0.data, cfg0.paths.data_dir)
            master = clean.clean(read_cards(path), cfg0.data, cfg0.chem_window, cfg0.cleaning, path).master
            view, _ = clean.make_view(master, cfg0.target)
            y = view[target].to_numpy(float)
            g = view[schema.GROUP_COL].to_numpy()
            means = view.groupby(schema.GROUP_COL)[target].mean()
            top = set(means.index[means >= means.quantile(a.frontier)])
            front_te = np.flatnonzero(np.isin(g, list(top)))
            front_tr = np.flatnonzero(~np.isin(g, list(top)))
            for model in a.models:
                cfg = compose([*base, f"regressor={model}", *a.overrides])
                new = []
                if "groups" in a.splits:
                    t0 = time.perf_counter()
                    mean, std, inside = (np.full(len(y), np.nan) for _ in range(3))
                    for tr, te in GroupKFold(n_splits=a.folds).split(view, groups=g):
                        mean[te], std[te], inside[te] = fit_predict(cfg, view, tr, te)
                    new.append(
                        {
                            "data": data,
                            "target": target,
                            "model": model,
                            "split": "groups",
                            **summary(y, mean, std, inside.astype(bool)),
                            "n": len(y),
                            "s": round(time.perf_counter() - t0),
                        }
                    )
                if "frontier" in a.splits:
                    t0 = time.perf_counter()
                    fm, fs, fi = fit_predict(cfg, view, front_tr, front_te)
                    new.append(
                        {
                            "data": data,
                            "target": target,
                            "model": model,
                            "split": "frontier",
                            **summary(y[front_te], fm, fs, fi),
                            "n": len(front_te),
                            "s": round(time.perf_counter() - t0),
                        }
                    )
                print(pd.DataFrame(new).to_string(index=False, header=not rows), flush=True)
                rows += new
    table = pd.DataFrame(rows)
    print("\n" + table.to_string(index=False))


if __name__ == "__main__":
    main()
