"""Grouped cross-validation of a formula and of the whole procedure, the Pareto table and the choice on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from sklearn.base import clone
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import GroupKFold

from .. import expr
from .. import physics as physics_mod
from ..config import TrainConfig


def metrics(y, pred) -> dict:
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    ok = np.isfinite(pred)
    if not ok.all():
        pred = np.where(ok, pred, np.nanmedian(y))
    nz = np.abs(y) > 1e-9
    return {
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
        "mape": float(np.mean(np.abs((y[nz] - pred[nz]) / y[nz])) * 100) if nz.any() else float("nan"),
        "n": int(len(y)),
        "n_nonfinite_predictions": int((~ok).sum()),
    }


def folds(groups, n_splits: int):
    g = np.asarray(groups)
    return list(GroupKFold(n_splits=min(n_splits, len(np.unique(g)))).split(np.zeros(len(g)), groups=g))


def oof(estimator, X, y, splits, fitted: list | None = None, tick=None) -> np.ndarray:
    """Out-of-fold predictions: clone, fit on the other groups, predict the held-out groups (the fold's fitted
    estimators are appended to `fitted` when given; tick(k) after fold k)."""
    pred = np.full(len(y), np.nan)
    for k, (tr, te) in enumerate(splits, 1):
        est = clone(estimator).fit(X.iloc[tr], y[tr])
        pred[te] = est.predict(X.iloc[te])
        if fitted is not None:
            fitted.append(est)
        if tick:
            tick(k)
    return pred


def clip_range(y: np.ndarray, margin: float) -> tuple[float, float]:
    """The training target range widened by `margin` x its width on each side."""
    lo, hi = float(np.min(y)), float(np.max(y))
    return lo - margin * (hi - lo), hi + margin * (hi - lo)


def _clip(pred: np.ndarray, y_train: np.ndarray, margin) -> np.ndarray:
    return pred if margin is None else np.clip(pred, *clip_range(y_train, margin))


def nested_cv(member: dict, fold_fronts: list, X: pd.DataFrame, splits, y=None, clip=None) -> np.ndarray:
    """Out-of-fold predictions of "the engine's search at this size": in each fold, the member of that fold's own
    front (fitted on the fold's train part) from the same source with at most this length and the lowest training
    MSE. Unlike a constants-only refit, the fold's test groups never helped choose the structure, so a search that
    overfits structure shows it here. NaN in a fold whose front has no such member. clip: predictions bounded to
    the fold's training target range (clip_range) as the final model will be."""
    pred = np.full(len(X), np.nan)
    for (tr, te), front in zip(splits, fold_fronts):
        same = [f for f in front if f.get("source") == member.get("source") and f["length"] <= member["length"]]
        if same:
            best = min(same, key=lambda f: f["mse"])
            with np.errstate(all="ignore"):
                pred[te] = np.broadcast_to(expr.evaluate(best["expr"], _cols(X, te)), (len(te),))
            if clip is not None:
                pred[te] = _clip(pred[te], y[tr], clip)
    return pred


def _refit_weights(tree: dict, X: dict, y: np.ndarray, signs=None) -> dict | None:
    """Linear least squares of the weights of a sum c0 + w1·b1 + ... (the bases b keep their constants), or
    None when the tree is not such a sum or a basis is non-finite. `signs` (per basis, -1 / 0 / +1): weights held
    to the sign physics gives them (bounded least squares), so no refit flips a sign-constrained term."""
    bases = []
    for _, t in expr.terms(tree):
        if "const" in t:
            continue
        if t.get("op") != "mul" or "const" not in t["args"][0]:
            return None
        bases.append(t["args"][1])
    with np.errstate(all="ignore"):
        D = np.column_stack([np.ones(len(y))] + [np.broadcast_to(expr.evaluate(b, X), (len(y),)) for b in bases])
    if not np.isfinite(D).all():
        return None
    s = signs if signs is not None and len(signs) == len(bases) else np.zeros(len(bases))
    w = physics_mod.signed_lstsq(D, y, np.r_[0.0, s])  # the intercept is free
    return expr.weighted_sum(w[0], w[1:], bases)


def refit_constants(tree: dict, X: dict, y: np.ndarray, max_nfev: int = 200, linear: bool = False, signs=None) -> dict:
    """Least-squares refit of a fixed expression's constants (structure kept). linear: the tree is a weighted
    sum of fixed bases (a hinge path member): only the weights are refitted, exactly, by linear least squares,
    each within the sign physics holds it to (`signs`, the member's own)."""
    if linear and (fitted := _refit_weights(tree, X, y, signs)) is not None:
        return fitted
    c0 = np.asarray(expr.constants(tree), float)
    if len(c0) == 0:
        return tree

    def resid(c):
        r = expr.evaluate(expr.with_constants(tree, c), X) - y
        return np.where(np.isfinite(r), r, 1e6)

    try:
        sol = least_squares(resid, c0, max_nfev=max_nfev, method="trf")
        return expr.with_constants(tree, sol.x) if np.all(np.isfinite(sol.x)) else tree
    except (ValueError, FloatingPointError):
        return tree


def _cols(X: pd.DataFrame, idx=None) -> dict:
    A = X.to_numpy(float) if idx is None else X.to_numpy(float)[idx]
    return {c: A[:, i] for i, c in enumerate(X.columns)}


def expression_cv(
    tree: dict, X: pd.DataFrame, y: np.ndarray, splits, linear: bool = False, clip=None, signs=None
) -> np.ndarray:
    """Out-of-fold predictions of a fixed structure with its constants refitted on each fold's train part."""
    pred = np.full(len(y), np.nan)
    for tr, te in splits:
        fitted = refit_constants(tree, _cols(X, tr), y[tr], linear=linear, signs=signs)
        pred[te] = _clip(np.broadcast_to(expr.evaluate(fitted, _cols(X, te)), (len(te),)), y[tr], clip)
    return pred


def nonfinite_on(tree: dict, matrices) -> int:
    """Rows of the given feature frames where the expression is NaN/inf (log or sqrt of a negative, overflow)."""
    with np.errstate(all="ignore"):
        return int(
            sum((~np.isfinite(np.broadcast_to(expr.evaluate(tree, _cols(M)), (len(M),)))).sum() for M in matrices)
        )


def member_cv(f: dict, X: pd.DataFrame, y: np.ndarray, splits, fold_fronts=None, clip=None) -> np.ndarray:
    """A front member's out-of-fold predictions: nested (fold_fronts given) or its structure with refitted constants."""
    if fold_fronts is not None:
        return nested_cv(f, fold_fronts, X, splits, y, clip)
    return expression_cv(f["expr"], X, y, splits, f.get("linear", False), clip, f.get("signs"))


def pareto_table(
    front: list,
    X: pd.DataFrame,
    y: np.ndarray,
    splits,
    physics_of,
    *,
    domain=(),
    fold_fronts=None,
    clip=None,
    groups=None,
    tick=None,
) -> pd.DataFrame:
    """Every Pareto expression with its grouped CV MAE (member_cv), physics result and the number of non-finite
    predictions on the training rows and `domain` (feature frames of real cards). With `groups`, the table's
    attrs["group_abs_error"] holds each member's summed absolute CV error per group (members x groups) and
    attrs["group_rows"] the rows per group, for the paired standard errors of choose(rule="se")."""
    rows, per_group = [], []
    codes = np.unique(np.asarray(groups), return_inverse=True)[1] if groups is not None else None
    for i, f in enumerate(front):
        pred = member_cv(f, X, y, splits, fold_fronts, clip)
        ok = np.isfinite(pred)
        err = np.where(ok, np.abs(pred - y), np.inf)
        if codes is not None:
            per_group.append(np.bincount(codes, err))
        phys = physics_of({"kind": "expression", "expr": f["expr"], "features": list(X.columns)})
        rows.append(
            {
                "id": i,
                "source": f.get("source", ""),
                "complexity": f["length"],
                "train_mse": f["mse"],
                "cv_mae": float(np.mean(err[ok])) if ok.any() else np.inf,
                "cv_r2": float(1 - np.mean((pred[ok] - y[ok]) ** 2) / np.var(y[ok])) if ok.sum() > 1 else -np.inf,
                "cv_nonfinite": int((~ok).sum()),
                "domain_nonfinite": nonfinite_on(f["expr"], [X, *domain]),
                "physics_pass": phys["pass"],
                "physics": "; ".join(
                    f"{c['feature']}:{c.get('fraction_expected_sign', 'n/a')}" for c in phys["checks"]
                ),
                "expression": expr.to_string(f["expr"], 6),
            }
        )
        if tick:
            tick(i + 1)
    table = pd.DataFrame(rows)
    if codes is not None:
        table.attrs.update(group_abs_error=np.array(per_group), group_rows=np.bincount(codes))
    return table


SIZES = (20, 40, 80)  # the front is reported at these sizes (nodes): what a small formula gives up


def by_size(table: pd.DataFrame, sizes=SIZES) -> dict:
    """The best grouped-CV R² and MAE among the front's usable members (finite, physics not failed) of at most
    each size: {"cv_r2_le_20": ..., "cv_mae_le_20": ..., ...}; None where no member is that small."""
    ok = (table["cv_nonfinite"] == 0) & table["physics_pass"].ne(False)
    if "domain_nonfinite" in table:
        ok &= table["domain_nonfinite"] == 0
    out = {}
    for n in sizes:
        t = table[ok & (table["complexity"] <= n)]
        out[f"cv_r2_le_{n}"] = float(t["cv_r2"].max()) if len(t) else None
        out[f"cv_mae_le_{n}"] = float(t["cv_mae"].min()) if len(t) else None
    return out


def paired_se(err: np.ndarray, rows: np.ndarray, best: int) -> np.ndarray:
    """Per member: the standard error of its CV MAE minus the best member's, paired on the same rows and
    clustered by group (the CV's unit of independence): sqrt(G/(G-1) Σ_g (d_g - n_g·d̄)²) / n."""
    d = err - err[best]
    n, G = rows.sum(), len(rows)
    mean = d.sum(axis=1, keepdims=True) / n
    with np.errstate(invalid="ignore"):
        return np.sqrt(G / max(G - 1, 1) * ((d - rows * mean) ** 2).sum(axis=1)) / n


def choose(
    table: pd.DataFrame,
    rule: str = TrainConfig.select_rule,
    tolerance: float = TrainConfig.select_tolerance,
    require_physics: bool = TrainConfig.require_physics,
    max_complexity: int | None = None,
) -> tuple[int, str]:
    """Pick a Pareto expression among those passing physics (all if none pass). parsimony: the smallest
    expression whose CV MAE is within `tolerance` of the best CV MAE; gain: the smallest whose CV MAE gives up at
    most `tolerance` of the best expression's gain over the constant (the front's 1-node member), so the allowance
    scales with what the models learn, not with the noise (on a noisy target such as elongation 5 % of the MAE is
    most of the gain, and parsimony picks near-constant formulas); se: the smallest whose CV MAE is within
    `tolerance` paired, group-clustered standard errors of the best (paired_se; needs pareto_table's groups);
    min_cv: the lowest CV MAE. max_complexity: only members of at most this many nodes (the constant always is)."""
    if max_complexity is not None:
        table = table[table["complexity"] <= max(int(max_complexity), 1)]
    finite = table["cv_nonfinite"] == 0
    if "domain_nonfinite" in table:  # an expression that is NaN somewhere on real cards is not a model
        finite &= table["domain_nonfinite"] == 0
    cand = table[finite]
    cand = cand if len(cand) else table
    phys = cand[cand["physics_pass"].ne(False)]  # no applicable check is no failure
    pool = phys if (require_physics and len(phys)) else cand
    why = "physics-passing expressions" if pool is phys and len(phys) else "all expressions (none passes physics)"
    if rule == "min_cv":
        pick = pool.sort_values(["cv_mae", "complexity"]).iloc[0]
        return int(pick["id"]), f"lowest CV MAE among {why}"
    best = pool["cv_mae"].min()
    const = table.loc[table["complexity"] == 1, "cv_mae"].min()
    if rule == "se":
        if "group_abs_error" not in table.attrs:
            raise ValueError("select_rule=se needs the per-group CV errors: pareto_table(..., groups=...)")
        se = paired_se(table.attrs["group_abs_error"], table.attrs["group_rows"], int(pool["cv_mae"].idxmin()))
        ok = pool["cv_mae"].to_numpy() <= best + tolerance * se[pool.index.to_numpy()]
        pick = pool[ok].sort_values(["complexity", "cv_mae"]).iloc[0]
        return int(pick["id"]), (
            f"smallest complexity with CV MAE <= best ({best:.4g}) + {tolerance:g} paired "
            f"standard error(s) (clustered by group) among {why}"
        )
    if rule == "gain" and const > best:
        limit, how = (
            best + tolerance * (const - best),
            (f"best ({best:.4g}) + {tolerance:g} x its gain over the constant ({const:.4g})"),
        )
    else:  # parsimony, or a front without a constant member
        limit, how = best * (1 + tolerance), f"(1 + {tolerance:g}) x best ({best:.4g})"
    pick = pool[pool["cv_mae"] <= limit].sort_values(["complexity", "cv_mae"]).iloc[0]
    return int(pick["id"]), f"smallest complexity with CV MAE <= {how} among {why}"


def subsample(groups, max_rows: int, seed: int, always=None) -> np.ndarray:
    """At most max_rows row indices (symbolic fits scale with rows): every row flagged in `always` (the real
    cards: a lab's few hundred experiments are never dropped for synthetic copies), then the same share of the
    other rows from every group."""
    n = len(groups)
    if n <= max_rows:
        return np.arange(n)
    always = np.zeros(n, bool) if always is None else np.asarray(always, bool)
    rng = np.random.default_rng(seed)
    frac = max(max_rows - int(always.sum()), 0) / max(int((~always).sum()), 1)
    g = pd.Series(np.asarray(groups))
    keep = g.groupby(g).transform(lambda s: rng.random(len(s)) < frac).to_numpy()
    return np.flatnonzero(keep | always)


@dataclass
class Rows:
    """The (subsampled) training rows as the estimator sees them."""

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    real: np.ndarray  # True on real cards (synthetic rows train folds but are never scored)
    splits: list
    featuriser: object


def _rows(cards: pd.DataFrame, target: str, featuriser, opts, seed: int) -> Rows:
    feat = clone(featuriser).fit(cards)
    X_all, y_all, g_all = feat.transform(cards), cards[target].to_numpy(float), cards["_cv_group"].to_numpy()
    is_real = (cards["is_synthetic"].to_numpy() == 0) if "is_synthetic" in cards else np.ones(len(cards), bool)
    sub = subsample(g_all, opts.max_rows, seed, always=is_real)
    X, y, groups = X_all.iloc[sub].reset_index(drop=True), y_all[sub], g_all[sub]
    return Rows(X, y, groups, is_real[sub], folds(groups, opts.cv_folds), feat)
