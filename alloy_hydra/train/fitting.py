"""fit_property_model: the training rows, the engine's front, the choice among it, the ensemble and sigma, as one
Model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from .. import expr
from .. import physics as physics_mod
from ..errors import ConfigError
from ..model import SIGMA_TERMS, Model, predict_json, sigma_of
from ..regress import GBMModel, RidgeModel
from .cv import (
    Rows,
    _cols,
    _rows,
    choose,
    clip_range,
    member_cv,
    metrics,
    nonfinite_on,
    oof,
    pareto_table,
    refit_constants,
)
from .uncertainty import Uncertainty, _uncertainty, ensemble, monotone, sigma_checks


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
        domain=domain,
        fold_fronts=fold_fronts,
        clip=opts.clip_margin,
        groups=rows.groups,
        tick=progress.step(f"Pareto member scored (of {len(front)})"),
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
    *,
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
    X, y, splits = rows.X, rows.y, rows.splits
    reg, pert, baselines = _engines(rows, real_cards, target, make_estimator, opts, seed, rederive)
    progress.grow(3 * len(splits) + 1 + opts.ensemble)
    fitted = []
    cv_proc = oof(reg, X, y, splits, fitted, progress.step(f"grouped CV fold (of {len(splits)})"))  # whole procedure
    base_cv = {k: oof(b, X, y, splits, tick=progress.step(f"{k} baseline, fold")) for k, b in baselines.items()}
    progress.say(f"final fit on all {len(X)} rows")
    final = clone(reg).fit(X, y)
    fitted_baselines = {k: clone(b).fit(X, y) for k, b in baselines.items()}
    progress.step("final fit")(1)
    pick = _choose_formula(final, rows, pert, fitted, cv_proc, opts, progress)
    symbolic = final.to_json()["kind"] == "expression" and not isinstance(final, RidgeModel)
    main, members = _members(pick, reg, rows, symbolic, opts, seed, progress)
    reference = fitted_baselines["gbm"].to_json() if symbolic and opts.agreement_sigma else None
    unc = _uncertainty(
        rows, real_cards, main, pick.cv, base_cv["gbm"] if reference is not None else None, symbolic, opts
    )
    cv = _cv_figures(rows, pick.cv, cv_proc, base_cv, unc)
    capped = sum(bool(getattr(e, "time_capped_", False)) for e in [*fitted, final])
    model = _model(target, rows, pick, unc, opts, main=main, members=members, reference=reference, capped=capped)
    return Fit(model, fitted_baselines, cv, pick.table, pick.chosen_id, pick.why, pert, pick.cv)


def _engines(rows: Rows, real_cards, target, make_estimator, opts, seed: int, rederive):
    """The engine (told the audited signs when it can keep them), the physics perturbations, and the ridge and
    gbm baselines on the same feature names."""
    names = list(rows.X.columns)
    feat = rows.featuriser
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
    return reg, pert, baselines


def _members(pick: Choice, reg, rows: Rows, symbolic: bool, opts, seed: int, progress):
    """The chosen formula (bounded to the training range when train.clip_margin says so) and its group-bootstrap
    ensemble members."""
    main, n_members = pick.main, opts.ensemble
    bounds = clip_range(rows.y, opts.clip_margin) if pick.table is not None and opts.clip_margin is not None else None
    if main["kind"] != "expression":  # tree / refit members cost a whole fit each
        progress.grow(min(n_members, 5) - n_members)
        n_members = min(n_members, 5)
    members = ensemble(
        main,
        None if symbolic else reg,
        rows,
        n_members,
        seed,
        domain=pick.domain,
        linear=pick.linear,
        bounds=bounds,
        tick=progress.step(f"ensemble member (of {n_members})"),
        signs=pick.signs,
    )
    if bounds:
        main = {**main, "expr": expr.bounded(main["expr"], *bounds)}
    return main, members


def _model(target, rows: Rows, pick: Choice, unc, opts, *, main: dict, members: list, reference, capped: int) -> Model:
    """The Model: the chosen formula (as bounded), its ensemble members, σ, the domain and the training facts."""
    info = {
        "n_train_rows": int(len(rows.X)),
        "n_train_groups": int(len(np.unique(rows.groups))),
        "complexity": expr.length(main["expr"]) if main["kind"] == "expression" else None,
        "selection": pick.why,
        "n_real_rows": int(rows.real.sum()),
        "sr_time_cap_fired": int(capped),
    }
    sigma = unc.sigma
    return Model(
        target.name,
        target.unit,
        rows.featuriser,
        main,
        members,
        unc.resid,
        unc.domain,
        info,
        reference,
        float(opts.agreement_sigma or 0.0) if reference is not None else 0.0,
        {k: sigma[k] for k in SIGMA_TERMS} if sigma is not None else None,
    )


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
