"""Accuracy on real public data (issue 5's bar): uq_al_alloys.csv, 5-fold GroupKFold by alloy (Unspecified rows
grouped by composition), the same folds for every model. Inside each fold the model is trained by exactly the
pipeline procedure (alloy_hydra.train.fit_property_model: grouped inner CV, Pareto choice, ensemble).

    python benchmarks/bench_accuracy.py [overrides ...] [--targets YS UTS FractureEL] [--generator none|jitter|...]
                                        [--folds 5] [--oof predictions.csv] [--data uq_al|hu2021]

The files come from the dataset cache (`python -m alloy_hydra.datasets fetch uq_al hu2021`, or `add` with a copy;
`paths.data_dir=...` among the overrides names another cache). --data hu2021 runs the same procedure on the Hu et
al. (2021) file (groups = identical composition; only a processing-route category, no temperatures):
an independent data set to check a setting found on uq_al.

Besides R² on all rows it prints R² on the rows of named groups (alloy names) and of groups formed by composition
(uq's `Unspecified` research alloys), since the two behave differently: see the README's accuracy notes.
--oof writes every row's out-of-fold predictions (with group, alloy and reference) for per-alloy analysis.
Put overrides before --targets (argparse would take them as targets otherwise).
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
DATA = ("uq_al", "hu2021")  # the bar; an independent check (composition groups). Read from the dataset cache


from alloy_hydra.config import compose  # noqa: E402


def synthetic_for(cfg, train_cards):
    from alloy_hydra import stages

    synth = stages.generate.synthesise(cfg, train_cards).synth_cards
    return synth.assign(_cv_group=synth["source_group"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", nargs="+", default=["YS", "UTS", "FractureEL"])
    ap.add_argument("--generator", default="none")
    ap.add_argument("--data", choices=sorted(DATA), default="uq_al")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--oof", help="write out-of-fold predictions of every model to this CSV")
    ap.add_argument("overrides", nargs="*", help="extra config overrides, e.g. regressor.generations=400")
    a = ap.parse_args()
    from alloy_hydra import clean, schema, stages, train
    from alloy_hydra.io import read_cards

    rows, oof = [], []
    for target in a.targets:
        cfg = compose(
            [
                f"data={a.data}",
                "chem_window=wrought",
                f"target={target}",
                f"generator={a.generator}",
                "summary=false",
                *a.overrides,
            ]
        )
        path = clean.data_path(cfg.data, cfg.paths.data_dir)
        master = clean.clean(read_cards(path), cfg.data, cfg.chem_window, cfg.cleaning, path).master
        view, _ = clean.make_view(master, cfg.target)
        y = view[target].to_numpy(float)
        preds = {k: np.full(len(view), np.nan) for k in ("symbolic", "ridge", "gbm")}
        sizes, t0 = [], time.perf_counter()
        for tr, te in GroupKFold(n_splits=a.folds).split(view, groups=view[schema.GROUP_COL]):
            real = view.iloc[tr].reset_index(drop=True)
            cards = real.assign(_cv_group=real[schema.GROUP_COL])
            if a.generator != "none":
                cards = pd.concat([cards, synthetic_for(cfg, real)], ignore_index=True)
            fit = stages.train.fit_model(cfg, cards, real)
            Xte = fit.model.featuriser.transform(view.iloc[te])
            preds["symbolic"][te] = fit.model.predict(X=Xte.to_numpy(float))[0]
            for k, b in fit.baselines.items():
                preds[k][te] = b.predict(Xte)
            sizes.append(fit.model.info["complexity"])
        by_comp = view[schema.GROUP_COL].astype(str).str.startswith(schema.COMPOSITION_GROUP_PREFIX).to_numpy()
        for k, p in preds.items():
            m = train.metrics(y, p)
            part = {
                f"R2_{name}": round(train.metrics(y[mask], p[mask])["r2"], 3) if mask.sum() > 1 else ""
                for name, mask in (("named", ~by_comp), ("by_comp", by_comp))
            }
            rows.append(
                {
                    "data": a.data,
                    "target": target,
                    "generator": a.generator,
                    "model": k if k != "symbolic" else cfg.regressor.name,
                    "R2": round(m["r2"], 3),
                    **part,
                    "MAE": round(m["mae"], 2),
                    "complexity": sizes if k == "symbolic" else "",
                    "n": len(y),
                    "seconds": round(time.perf_counter() - t0, 1) if k == "symbolic" else "",
                }
            )
        print(pd.DataFrame(rows[-3:]).to_string(index=False), flush=True)
        keep = [c for c in ("source_row", schema.GROUP_COL, *cfg.data.id_columns, *cfg.data.carry_columns) if c in view]
        oof.append(view[keep].assign(target=target, y=y, **{f"pred_{k}": p for k, p in preds.items()}))
    print("\n" + pd.DataFrame(rows).to_string(index=False))
    if a.oof:
        pd.concat(oof, ignore_index=True).to_csv(a.oof, index=False)
        print(f"out-of-fold predictions: {a.oof}")


if __name__ == "__main__":
    main()
