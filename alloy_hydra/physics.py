"""Physics signs: does a model's response have the expected sign (target config `physics`)?

Finite differences on cards sampled from the real data's domain: each checked card column is nudged by 5 % of
its real 5-95 % range and the cards are re-featurised (so interactions such as Mg·Mn or 1/sqrt(d) move too).
A point agrees when sign(Δprediction) matches the expected sign or Δ = 0 (∂ ≥ 0 / ≤ 0 as written).

A check is `feature: sign`, or `feature: {sign: s, where: {column: [values]}}` when the expectation only holds
for some cards: more cold work raises strength in the as-rolled or recovered state, but before a recrystallisation
anneal it speeds recrystallisation and refines the grains, so the sign is audited on the cards `where` selects.
A `where` column the dataset lacks makes the check not applicable.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .config import TrainConfig


def check_spec(spec) -> tuple[int, dict]:
    """(sign, where) of a physics entry: `1` / `-1`, or a mapping with `sign` and optional `where`."""
    if isinstance(spec, Mapping):
        where = {
            str(c): [str(v) for v in ([vals] if isinstance(vals, (str, int, float)) else vals)]
            for c, vals in (spec.get("where") or {}).items()
        }
        return int(spec["sign"]), where
    return int(spec), {}


def perturbations(
    cards: pd.DataFrame, physics: dict, featurise, n_points: int = 300, rel_step: float = 0.05, seed: int = 0
) -> dict:
    """Base and nudged feature matrices per checked column (computed once, reused for every expression)."""
    rng = np.random.default_rng(seed)

    def draw(pool):
        return pool.iloc[rng.choice(len(pool), size=min(n_points, len(pool)), replace=False)].reset_index(drop=True)

    sample = draw(cards)
    out = {"base": featurise(sample), "checks": {}}
    for col, spec in physics.items():
        sign, where = check_spec(spec)
        entry = {"sign": sign, "where": where, "applicable": False}
        out["checks"][col] = entry
        if col not in cards or cards[col].nunique() < 2 or any(c not in cards for c in where):
            continue
        keep = np.ones(len(cards), bool)
        for c, values in where.items():
            keep &= cards[c].astype(str).isin(values).to_numpy()
        if keep.sum() < 2:
            continue
        lo, hi = np.nanpercentile(cards[col].astype(float), [5, 95])
        h = rel_step * (hi - lo if hi > lo else np.nanstd(cards[col].astype(float)) or 1.0)
        points = draw(cards.loc[keep]) if where else sample
        nudged = points.copy()
        nudged[col] = nudged[col].astype(float) + h
        entry.update(
            applicable=True,
            step=float(h),
            base=featurise(points) if where else out["base"],
            X=featurise(nudged),
            n_points=int(len(points)),
        )
    return out


def constraints(pert: dict, columns) -> list:
    """The applicable checks as {"base", "nudged", "sign"} feature arrays (columns in the given order), for a
    regressor that keeps the physics while it fits (regress.HingeRegressor)."""
    return [
        {
            "base": c["base"][list(columns)].to_numpy(float),
            "nudged": c["X"][list(columns)].to_numpy(float),
            "sign": c["sign"],
            "everywhere": not c.get("where"),  # a `where` check holds on some cards only: no global sign
        }
        for c in pert["checks"].values()
        if c["applicable"]
    ]


def directions(delta: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Per column of a (points x columns) change matrix: +1 where the column never falls and somewhere rises,
    -1 for the reverse, 0 where it does not move or moves both ways (no sign can be imposed on it)."""
    d = np.asarray(delta, float)
    up, down = (d > tol).any(axis=0), (d < -tol).any(axis=0)
    return np.where(up & ~down, 1, np.where(down & ~up, -1, 0))


def weight_signs(constraints: list, deltas=None) -> np.ndarray | None:
    """The sign each column's weight must have in an additive model for every check that holds everywhere
    (`constraints(...)`; `deltas` = per constraint the change of each model column, default nudged - base):
    a column that only rises when a strengthening input rises gets a weight >= 0, and so on; 0 = free (the
    column does not move, moves both ways, or two checks disagree). None without such checks."""
    out = None
    for k, c in enumerate(constraints or []):
        if not c.get("everywhere", True):
            continue
        d = deltas[k] if deltas is not None else np.asarray(c["nudged"], float) - np.asarray(c["base"], float)
        s = directions(d) * int(c["sign"])
        if out is None:
            out = s
        else:
            out = np.where(out == 0, s, np.where((s == 0) | (s == out), out, 0))
    return out


def signed_lstsq(A: np.ndarray, y: np.ndarray, signs) -> np.ndarray:
    """Least squares of y on the columns of A, each weight held to its sign (-1 / 0 = free / +1; bounded least
    squares, BVLS) — the one fit behind a physics-signed term, on the hinge path and in every refit."""
    s = np.asarray(signs, float)
    if not np.any(s):
        return np.linalg.lstsq(A, y, rcond=None)[0]
    from scipy.optimize import lsq_linear

    lb, ub = np.where(s > 0, 0.0, -np.inf), np.where(s < 0, 0.0, np.inf)
    return lsq_linear(A, y, bounds=(lb, ub), method="bvls").x


def sign_fraction(delta, sign: float, tol: float = 1e-9) -> float:
    """Share of points whose prediction change has the expected sign (a non-finite change never does)."""
    d = np.asarray(delta, float) * sign
    return float((np.isfinite(d) & (d >= -tol)).mean())


def audit(predict, pert: dict, min_fraction: float = TrainConfig.physics_min_fraction, tol: float = 1e-9) -> dict:
    """Per check: fraction of points with the expected sign; pass when >= min_fraction."""
    y0 = predict(pert["base"])
    checks = []
    for col, c in pert["checks"].items():
        if not c["applicable"]:
            checks.append(
                {
                    "feature": col,
                    "expected_sign": c["sign"],
                    "applicable": False,
                    "pass": None,
                    "where": c.get("where", {}),
                    "note": "feature (or a `where` column) not in this dataset, or too few cards",
                }
            )
            continue
        base = y0 if c["base"] is pert["base"] else predict(c["base"])
        d = (predict(c["X"]) - base) * c["sign"]
        entry = {
            "feature": col,
            "expected_sign": c["sign"],
            "where": c["where"],
            "step": c["step"],
            "n_points": c["n_points"],
        }
        if np.all(np.isfinite(d) & (np.abs(d) <= tol)):  # the model does not respond to this feature at all
            checks.append(
                {
                    **entry,
                    "applicable": False,
                    "pass": None,
                    "note": "the model does not use this feature (no point moves): the check cannot fail",
                }
            )
            continue
        frac = sign_fraction(d, 1.0, tol)
        checks.append(
            {
                **entry,
                "applicable": True,
                "fraction_expected_sign": frac,
                "fraction_strict": float((d > tol).mean()),
                "mean_delta": float(np.nanmean(d * c["sign"])),
                "pass": frac >= min_fraction,
            }
        )
    applicable = [c for c in checks if c["applicable"]]
    # the verdict counts only checks that could fail: with none, there is no verdict (None), not a pass
    verdict = all(c["pass"] for c in applicable) if applicable else None
    return {"checks": checks, "pass": verdict, "n_applicable": len(applicable), "min_fraction": min_fraction}
