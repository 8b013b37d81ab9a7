"""Physics audit: does the model's response have the expected sign (target config `physics`)?

Finite differences on cards sampled from the real data's domain: each checked card column is nudged by 5 % of
its real 5-95 % range and the cards are re-featurised (so interactions such as Mg·Mn or 1/sqrt(d) move too).
A point agrees when sign(Δprediction) matches the expected sign or Δ = 0 (∂ ≥ 0 / ≤ 0 as written).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def perturbations(cards: pd.DataFrame, physics: dict, featurise, n_points: int = 300, rel_step: float = 0.05,
                  seed: int = 0) -> dict:
    """Base and nudged feature matrices per checked column (computed once, reused for every expression)."""
    rng = np.random.default_rng(seed)
    sample = cards.iloc[rng.choice(len(cards), size=min(n_points, len(cards)), replace=False)].reset_index(drop=True)
    base = featurise(sample)
    out = {"base": base, "checks": {}}
    for col, sign in physics.items():
        if col not in cards or cards[col].nunique() < 2:
            out["checks"][col] = {"sign": int(sign), "applicable": False}
            continue
        lo, hi = np.nanpercentile(cards[col].astype(float), [5, 95])
        h = rel_step * (hi - lo if hi > lo else np.nanstd(cards[col].astype(float)) or 1.0)
        nudged = sample.copy()
        nudged[col] = nudged[col].astype(float) + h
        out["checks"][col] = {"sign": int(sign), "applicable": True, "step": float(h), "X": featurise(nudged)}
    return out


def audit(predict, pert: dict, min_fraction: float = 0.9, tol: float = 1e-9) -> dict:
    """Per check: fraction of points with the expected sign; pass when >= min_fraction."""
    y0 = predict(pert["base"])
    checks = []
    for col, c in pert["checks"].items():
        if not c["applicable"]:
            checks.append({"feature": col, "expected_sign": c["sign"], "applicable": False, "pass": True,
                           "note": "feature not in this dataset"})
            continue
        d = (predict(c["X"]) - y0) * c["sign"]
        ok = np.isfinite(d) & (d >= -tol)
        frac = float(ok.mean())
        checks.append({"feature": col, "expected_sign": c["sign"], "applicable": True, "step": c["step"],
                       "fraction_expected_sign": frac, "fraction_strict": float((d > tol).mean()),
                       "mean_delta": float(np.nanmean(d * c["sign"])), "pass": frac >= min_fraction})
    return {"checks": checks, "pass": all(c["pass"] for c in checks), "min_fraction": min_fraction}
