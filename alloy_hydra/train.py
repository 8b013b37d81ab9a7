"""Training a property model: grouped CV, Pareto-front selection, bootstrap ensemble, holdout validation.

CV groups: a synthetic row carries the real class it was generated for (`source_group`), so a fold never
scores a model on near-copies of its own training rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from sklearn.base import clone
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import GroupKFold

from . import expr
from . import physics as physics_mod
from .errors import ConfigError
from .model import SIGMA_TERMS, Domain, Model, knn_mean_distance, predict_json, sigma_of, sigma_terms
from .regress import GBMModel, RidgeModel


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
    rule: str = "parsimony",
    tolerance: float = 0.02,
    require_physics: bool = True,
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


def bootstrap_groups(groups, n_members: int, seed: int):
    """Index sets resampling whole groups with replacement."""
    rng = np.random.default_rng(seed)
    g = np.asarray(groups)
    uniq = np.unique(g)
    where = {u: np.flatnonzero(g == u) for u in uniq}
    for _ in range(n_members):
        pick = rng.choice(uniq, size=len(uniq), replace=True)
        yield np.concatenate([where[u] for u in pick])


def ensemble(
    main: dict,
    estimator,
    X: pd.DataFrame,
    y: np.ndarray,
    groups,
    n_members: int,
    seed: int,
    domain=(),
    linear: bool = False,
    bounds: tuple[float, float] | None = None,
    tick=None,
    signs=None,
) -> list:
    """Members for the uncertainty: expressions refit their constants on group bootstraps (structure kept;
    a refit that is non-finite on the training rows or `domain` is dropped; the output `bounds` applied after the
    refit, as to the main formula); other models refit on them."""
    members = []
    for k, idx in enumerate(bootstrap_groups(groups, n_members, seed), 1):
        if tick:
            tick(k)
        if main["kind"] == "expression" and estimator is None:
            tree = refit_constants(main["expr"], _cols(X, idx), y[idx], linear=linear, signs=signs)
            if not nonfinite_on(tree, [X, *domain]):
                tree = expr.bounded(tree, *bounds) if bounds else tree
                members.append({"kind": "expression", "features": main["features"], "expr": tree})
        else:
            members.append(clone(estimator).fit(X.iloc[idx], y[idx]).to_json())
    return members


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


def oof_distance(domain: Domain, X: np.ndarray, splits, real: np.ndarray) -> np.ndarray:
    """Each row's distance (Domain.distance: every input, standardised) to the real cards of the other folds:
    how far a card sat from what the fold's model was trained on."""
    Z, out = domain.standardise(X), np.full(len(X), np.nan)
    for tr, te in splits:
        P = Z[tr[real[tr]]]
        if len(P):
            out[te] = knn_mean_distance(Z[te], P, min(domain.k, len(P)))
    return out


def fit_sigma(err: np.ndarray, ok: np.ndarray, gap=0.0, dratio=0.0, level=0.0) -> dict:
    """The sigma model from out-of-fold errors of real cards: non-negative least squares of sqrt(pi/2)·|error| (the
    mean absolute value of a normal error is sigma·sqrt(2/pi)) on the terms of model.sigma_terms. |error|, not its
    square: a few large misses would otherwise decide the slopes."""
    from scipy.optimize import nnls

    A = sigma_terms(len(err), gap, dratio, level)
    ok = ok & np.isfinite(err) & np.isfinite(A).all(axis=1)
    A, b = A[ok], np.sqrt(np.pi / 2) * np.abs(err[ok])
    coef = nnls(A, b)[0] if ok.sum() >= A.shape[1] else np.r_[b.mean() if len(b) else 0.0, np.zeros(A.shape[1] - 1)]
    if coef[0] <= 0:  # sigma never 0: at least the scatter the other terms leave
        coef[0] = max(1e-9, float(np.median(b - A[:, 1:] @ coef[1:]))) if len(b) else 1e-9
    return {**dict(zip(SIGMA_TERMS, map(float, coef))), "fitted_on": int(ok.sum())}


def sigma_checks(err: np.ndarray, sigma: np.ndarray) -> dict:
    """Does sigma say which predictions miss? Share within 1 and 2 sigma, Spearman rho of sigma with |error|."""
    from scipy.stats import spearmanr

    err, sigma = np.asarray(err, float), np.asarray(sigma, float)
    ok = np.isfinite(err) & ~np.isnan(sigma)  # an infinite sigma covers any error
    err, sigma = err[ok], sigma[ok]
    rho = spearmanr(sigma, np.abs(err)).statistic if len(err) > 2 and np.ptp(sigma) > 0 else float("nan")
    return {
        "coverage_1sigma": float(np.mean(np.abs(err) <= sigma)) if len(err) else float("nan"),
        "coverage_2sigma": float(np.mean(np.abs(err) <= 2 * sigma)) if len(err) else float("nan"),
        "spearman_sigma_abs_error": float(rho),
        "n": int(len(err)),
    }


def domain_check(y, mean, in_domain) -> dict:
    """Does the in-domain flag separate error? MAE of the cards flagged in and out, and the share in."""
    err = np.abs(np.asarray(y, float) - np.asarray(mean, float))
    inside = np.asarray(in_domain, bool)
    mae = lambda m: float(err[m].mean()) if m.any() else None
    return {
        "in_domain_share": float(inside.mean()) if len(inside) else None,
        "mae_in_domain": mae(inside),
        "mae_out_domain": mae(~inside),
        "n_out_domain": int((~inside).sum()),
    }


@dataclass
class Fit:
    model: Model
    baselines: dict
    cv: dict
    table: pd.DataFrame | None
    chosen_id: int | None
    why: str
    pert: dict
    oof: np.ndarray | None = None  # the chosen model's out-of-fold predictions on the (subsampled) training rows


class Quiet:
    """Progress of fit_property_model when nobody watches (report.TrainingProgress draws a bar)."""

    def grow(self, total: int) -> None:
        pass

    def say(self, what: str) -> None:
        pass

    def step(self, what: str):
        return lambda k: None


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


def _check_options(opts) -> None:
    if opts.select_cv not in ("nested", "refit") or opts.select_rule not in ("parsimony", "gain", "min_cv", "se"):
        raise ConfigError(
            f"train.select_cv must be nested or refit and train.select_rule parsimony, gain, se or "
            f"min_cv, not {opts.select_cv!r} / {opts.select_rule!r}"
        )
    if opts.max_complexity is not None and opts.max_complexity < 1:
        raise ConfigError(f"train.max_complexity must be >= 1 node (or null: any size), not {opts.max_complexity}")
    if opts.clip_margin is not None and not opts.clip_margin >= 0:
        raise ConfigError(f"train.clip_margin must be >= 0 (or null: unbounded formulas), not {opts.clip_margin}")


@dataclass
class Choice:
    main: dict  # the chosen JSON model
    cv: np.ndarray  # its out-of-fold predictions
    table: pd.DataFrame | None = None
    chosen_id: int | None = None
    why: str = "the estimator's own model"
    domain: list = field(default_factory=list)  # matrices a formula must stay finite on (audit points)
    linear: bool = False
    signs: list | None = None  # per term of a linear member: the sign physics holds its weight to


def _choose_formula(final, rows: Rows, pert: dict, fitted: list, cv_proc: np.ndarray, opts, progress) -> Choice:
    """A symbolic engine's front: each member scored by grouped CV, complexity and physics; one chosen by
    train.select_rule, its constants refitted on all rows. Other engines: their own model."""
    X, y, splits = rows.X, rows.y, rows.splits
    main, front = final.to_json(), getattr(final, "front_", [])
    if not (main["kind"] == "expression" and not isinstance(final, RidgeModel) and front):
        return Choice(main, cv_proc)

    def physics_of(model):
        return physics_mod.audit(lambda Xp: predict_json(model, Xp), pert, opts.physics_min_fraction)

    domain = [pert["base"]] + [
        m for c in pert["checks"].values() if c.get("applicable") for m in (c["base"], c["X"]) if m is not pert["base"]
    ]
    fold_fronts = [getattr(e, "front_", None) for e in fitted]
    if opts.select_cv != "nested" or not all(fold_fronts):
        fold_fronts = None
    progress.grow(len(front))
    table = pareto_table(
        front,
        X,
        y,
        splits,
        physics_of,
        domain,
        fold_fronts,
        opts.clip_margin,
        rows.groups,
        progress.step(f"Pareto member scored (of {len(front)})"),
    )
    chosen_id, why = choose(table, opts.select_rule, opts.select_tolerance, opts.require_physics, opts.max_complexity)
    fixed, linear, signs = (
        front[chosen_id]["expr"],
        front[chosen_id].get("linear", False),
        front[chosen_id].get("signs"),
    )
    refit = refit_constants(fixed, _cols(X), y, linear=linear, signs=signs)
    if table.loc[chosen_id, "domain_nonfinite"] == 0 and nonfinite_on(refit, [X, *domain]):
        refit = fixed  # least squares walked the constants out of the expression's valid region
    main = {"kind": "expression", "features": list(X.columns), "expr": refit}
    cv_chosen = member_cv(front[chosen_id], X, y, splits, fold_fronts, opts.clip_margin)
    return Choice(main, cv_chosen, table, chosen_id, why, domain, linear, signs)


def fit_property_model(
    cards: pd.DataFrame,
    real_cards: pd.DataFrame,
    target,
    featuriser,
    make_estimator,
    opts,
    seed: int,
    rederive=None,
    progress=None,
) -> Fit:
    """The whole training procedure on `cards` (with `_cv_group`): featurise, grouped CV of the estimator and
    of the ridge/gbm baselines on the same folds, final fit, Pareto choice (symbolic engines), group-bootstrap
    ensemble, residual sd, applicability domain on the real train cards. `target`: a TargetConfig (name, unit,
    physics); `opts`: the TrainConfig. `rederive(cards)` recomputes the derived card columns after the audit
    nudges a recipe number (cards.rederive), so e.g. cold work moves the retained strain too. `progress`: a
    report.TrainingProgress (default: Quiet)."""
    _check_options(opts)
    progress = progress or Quiet()
    rows = _rows(cards, target.name, featuriser, opts, seed)
    X, y, groups, splits, feat = rows.X, rows.y, rows.groups, rows.splits, rows.featuriser
    names = list(X.columns)
    reg = make_estimator(names)
    pert = physics_mod.perturbations(
        real_cards,
        dict(target.physics),
        (lambda c: feat.transform(rederive(c))) if rederive else feat.transform,
        seed=seed,
    )
    if "physics" in reg.get_params():  # the engine keeps the audited signs while it fits
        reg.set_params(physics=physics_mod.constraints(pert, names), physics_min_fraction=opts.physics_min_fraction)
    baselines = {
        "ridge": RidgeModel(feature_names=names, random_state=seed),
        # the reference of the domain and sigma keeps the audited signs too (monotone trees)
        "gbm": GBMModel(
            feature_names=names, random_state=seed, monotonic_cst=monotone(pert, names) if opts.monotone else None
        ),
    }
    n_members = opts.ensemble
    progress.grow(3 * len(splits) + 1 + n_members)
    fitted = []
    cv_proc = oof(reg, X, y, splits, fitted, progress.step(f"grouped CV fold (of {len(splits)})"))  # whole procedure
    base_cv = {k: oof(b, X, y, splits, tick=progress.step(f"{k} baseline, fold")) for k, b in baselines.items()}
    progress.say(f"final fit on all {len(X)} rows")
    final = clone(reg).fit(X, y)
    fitted_baselines = {k: clone(b).fit(X, y) for k, b in baselines.items()}
    progress.step("final fit")(1)
    pick = _choose_formula(final, rows, pert, fitted, cv_proc, opts, progress)
    main, cv_chosen = pick.main, pick.cv
    symbolic = final.to_json()["kind"] == "expression" and not isinstance(final, RidgeModel)
    bounds = clip_range(y, opts.clip_margin) if pick.table is not None and opts.clip_margin is not None else None
    if main["kind"] != "expression":  # tree / refit members cost a whole fit each
        progress.grow(min(n_members, 5) - n_members)
        n_members = min(n_members, 5)
    members = ensemble(
        main,
        None if symbolic else reg,
        X,
        y,
        groups,
        n_members,
        seed,
        pick.domain,
        pick.linear,
        bounds,
        progress.step(f"ensemble member (of {n_members})"),
        pick.signs,
    )
    if bounds:
        main = {**main, "expr": expr.bounded(main["expr"], *bounds)}
    reference = fitted_baselines["gbm"].to_json() if symbolic and opts.agreement_sigma else None
    unc = _uncertainty(
        rows, real_cards, main, pick.cv, base_cv["gbm"] if reference is not None else None, symbolic, opts
    )
    cv = _cv_figures(rows, pick.cv, cv_proc, base_cv, unc)
    capped = sum(bool(getattr(e, "time_capped_", False)) for e in [*fitted, final])
    info = {
        "n_train_rows": int(len(X)),
        "n_train_groups": int(len(np.unique(groups))),
        "complexity": expr.length(main["expr"]) if main["kind"] == "expression" else None,
        "selection": pick.why,
        "n_real_rows": int(rows.real.sum()),
        "sr_time_cap_fired": int(capped),
    }
    sigma = unc.sigma
    model = Model(
        target.name,
        target.unit,
        feat,
        main,
        members,
        unc.resid,
        unc.domain,
        info,
        reference,
        float(opts.agreement_sigma or 0.0) if reference is not None else 0.0,
        {k: sigma[k] for k in SIGMA_TERMS} if sigma is not None else None,
    )
    return Fit(model, fitted_baselines, cv, pick.table, pick.chosen_id, pick.why, pert, cv_chosen)


def monotone(pert: dict, names) -> list | None:
    """Per model input -1 / 0 / +1 for gradient boosting: the direction every check that holds everywhere gives
    the input (physics.weight_signs on the audit's nudges), None when there is none."""
    signs = physics_mod.weight_signs(physics_mod.constraints(pert, names))
    return None if signs is None or not np.any(signs) else [int(v) for v in signs]


@dataclass
class Uncertainty:
    resid: float  # RMS out-of-fold error of the real cards
    domain: Domain
    gap: np.ndarray  # out-of-fold |formula - gbm reference| (0 without a reference)
    dratio: np.ndarray  # out-of-fold distance / domain threshold
    ok: np.ndarray  # real cards with a finite out-of-fold prediction
    sigma: dict | None  # the fitted σ model (train.sigma_model)


def _uncertainty(rows: Rows, real_cards, main: dict, cv_chosen, reference_oof, symbolic: bool, opts) -> Uncertainty:
    """σ and the applicability domain, from the real cards only: a synthetic near-copy in a CV fold flatters
    the error it is scored on, so sigma taken from such folds says nothing about a new recipe."""
    X, y, real = rows.X, rows.y, rows.real
    names = list(X.columns)
    ok = np.isfinite(cv_chosen) & real
    resid = float(np.sqrt(np.mean((cv_chosen[ok] - y[ok]) ** 2)))
    use = [names.index(v) for v in expr.variables(main["expr"])] if symbolic else None  # the formula's inputs
    domain = Domain.fit(
        rows.featuriser.transform(real_cards).to_numpy(float),
        opts.domain_k,
        opts.domain_quantile,
        use,
        opts.domain_range_tol,
    )
    gap = cv_chosen - reference_oof if reference_oof is not None else np.zeros(len(y))
    dratio = oof_distance(domain, X.to_numpy(float), rows.splits, real) / domain.threshold
    sigma = fit_sigma(cv_chosen - y, ok, gap, dratio, cv_chosen) if opts.sigma_model else None
    return Uncertainty(resid, domain, gap, dratio, ok, sigma)


def _cv_figures(rows: Rows, cv_chosen, cv_proc, base_cv: dict, unc: Uncertainty) -> dict:
    """Grouped-CV figures on the real training cards: the chosen model, the whole procedure, the baselines,
    and how well σ covered the out-of-fold errors."""
    y, real, ok = rows.y, rows.real, unc.ok
    cv = {
        "chosen": metrics(y[ok], cv_chosen[ok]),
        "procedure": metrics(y[np.isfinite(cv_proc) & real], cv_proc[np.isfinite(cv_proc) & real]),
        "rows": "real training cards (synthetic rows train the folds but are not scored)",
    }
    cv.update({f"baseline_{k}": metrics(y[real], p[real]) for k, p in base_cv.items()})
    if unc.sigma is not None:
        sig = sigma_of(unc.sigma, len(y), unc.gap, unc.dratio, cv_chosen)
        cv["sigma"] = {**unc.sigma, **sigma_checks(cv_chosen[ok] - y[ok], sig[ok])}
    return cv
