"""What a prediction's error is expected to be: the bootstrap ensemble, the sigma model fitted to real out-of-fold
errors, and the checks that sigma and the domain flag predict error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from .. import expr
from .. import physics as physics_mod
from ..model import SIGMA_TERMS, Domain, knn_mean_distance, sigma_terms
from .cv import Rows, _cols, nonfinite_on, refit_constants


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
    rows: Rows,
    n_members: int,
    seed: int,
    *,
    domain=(),
    linear: bool = False,
    bounds: tuple[float, float] | None = None,
    tick=None,
    signs=None,
) -> list:
    """Members for the uncertainty: expressions refit their constants on group bootstraps (structure kept;
    a refit that is non-finite on the training rows or `domain` is dropped; the output `bounds` applied after the
    refit, as to the main formula); other models refit on them."""
    X, y, members = rows.X, rows.y, []
    for k, idx in enumerate(bootstrap_groups(rows.groups, n_members, seed), 1):
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
