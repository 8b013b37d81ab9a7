"""Stage design: compositions and process recipes that hit the target properties, from this run's model or
the models chosen among other runs (design.models), inside what the cards support."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config as config_mod
from .. import design as design_mod
from .. import factory, ground_truth, plots, report, selection
from ..errors import ConfigError
from .clean import Cleaned
from .train import Trained

log = logging.getLogger(__name__)


@dataclass
class Designed:
    recommendations: pd.DataFrame  # the top recipes (recommendations.csv)
    candidates: pd.DataFrame  # every feasible recipe, ranked (pareto_candidates.csv)
    hit_rate: float | None  # demo: share of the top recipes the ground truth puts within tolerance
    space: design_mod.Space | None = None  # what was searched
    targets: dict | None = None  # {target: value}
    units: dict | None = None  # {target: unit}
    reason: str | None = None  # why no recipe is left, or none has a real chance (design.min_p_hit); else None
    error_correlation: dict | None = None  # {"YS~UTS": rho} behind the joint p_hit (design.error_correlation)


REGISTRY = "registry:"  # design.models=registry:champion (an alias or a version number, for every target)


def _models(cfg, clean: Cleaned | None, train: Trained | None):
    """(models by target, the data and cleaning configs they were trained with, the cards to design from, the
    config to design with): this run's model, those selection.load_models picks under design.models, or the
    registry's versions (design.models=registry:<alias | version>; their chem window, since it bounds the cards
    they were trained on)."""
    d = cfg.design
    if isinstance(d.models, str) and d.models.startswith(REGISTRY):
        from .. import registry

        ref = d.models[len(REGISTRY) :]
        versions = registry.Registry(cfg.registry.path).load_many({t: ref for t in targets_of(cfg)})
        first = next(iter(versions.values()))
        cfg = dataclasses.replace(cfg, chem_window=first.config.chem_window)
        return {t: v.model for t, v in versions.items()}, first.config.data, first.config.cleaning, first.master, cfg
    if d.models:
        models, source = selection.load_models(d.models, d.combine)
        src_cfg = config_mod.load_run_config(source)
        master = pd.read_csv(source / "BASE_MASTER.csv", dtype={c: str for c in src_cfg.data.id_columns})
        return models, src_cfg.data, src_cfg.cleaning, master, cfg
    if train is not None and clean is not None:
        return {cfg.target.name: train.model}, cfg.data, cfg.cleaning, clean.master, cfg
    raise ConfigError(
        "stage design needs a model: run the train stage before it or set design.models=<run or sweep dir>"
    )


def space_for(cfg, master: pd.DataFrame, data) -> design_mod.Space:
    """What the cards (of design.family) support, with design.fixed / casting / bounds applied."""
    d = cfg.design
    fixed = dict(d.fixed)
    if d.casting:
        if "casting" in fixed and str(fixed["casting"]) != str(d.casting):
            raise ConfigError(f"design.fixed.casting={fixed['casting']!r} conflicts with design.casting={d.casting!r}")
        fixed["casting"] = d.casting
    try:
        space = design_mod.Space(master, data, cfg.chem_window, d, fixed=fixed)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    design_mod.check_prices(space, dict(d.cost_weights))
    if space.unsupported:
        log.info(
            "design: kept at the cards' typical value (held by < %g %% of %d cards; design.allow=[...] frees them): %s",
            100 * d.support.get("min_share", 0),
            len(master),
            ", ".join(f"{el} ({100 * sh:.1f} %)" for el, sh in space.unsupported.items()),
        )
    return space


def _closed_loop(top: pd.DataFrame, targets: dict, design) -> float:
    """Demo only: cast the top recipes in the ground truth (the recipe's own grain size, noise off) and score
    the share of the first design.hit_top within tolerance on every target."""
    truth = ground_truth.properties(top.drop(columns=["grain_size_um"], errors="ignore"))
    hits = np.ones(len(top), bool)
    for t in targets:
        top[f"{t}_truth"] = truth[t].round(3).to_numpy()
        hits &= (np.abs(truth[t] - targets[t]) <= design.tolerance.get(t, 1.0)).to_numpy()
    top["truth_hit"] = hits
    return float(hits[: design.hit_top].mean())


def targets_of(cfg) -> dict[str, float]:
    """The design targets: design.targets that are set, else the run's own target at its design value."""
    return {t: float(v) for t, v in cfg.design.targets.items() if v is not None} or {
        cfg.target.name: cfg.target.design_value
    }


def recommend(cfg, models: dict, data, cleaning, master: pd.DataFrame, progress=None) -> Designed:
    """The one design path (run.py's design stage, the service, the web page): the recipes that hit
    targets_of(cfg) under cfg.design's constraints, searched by cfg.optimizer over what `master`'s cards (of
    design.family) support, scored by `models` ({target: Model | Committee}); progress: see
    design._Search.minimise."""
    d = cfg.design
    targets = targets_of(cfg)
    wrong = design_mod.contradictions(targets, {t: v for t, v in d.min.items() if v is not None})
    if wrong:
        raise ConfigError("design.targets: " + "; ".join(why for _, why in wrong))
    missing = [t for t in targets if t not in models]
    if missing:
        raise ConfigError(
            f"design.targets has {missing} but no model for them (models for {sorted(models)}); "
            "train one per target (e.g. python run.py -m target=YS,UTS,FractureEL) and pass "
            "design.models=<sweep dir>"
        )
    master = design_mod.family_cards(master, d.family, d.families)
    space = space_for(cfg, master, data)
    evaluator = design_mod.Evaluator(space, {t: models[t] for t in targets}, d, cleaning, targets)
    search = factory.optimizer(cfg)
    X = search.minimise(evaluator, progress)
    ranked = design_mod.rank(evaluator, X, master, list(data.id_columns), search.feasible_)
    top = ranked.head(d.top).copy()
    hit_rate = _closed_loop(top, targets, d) if scored_by_simulator(data) and len(top) else None
    units = {t: models[t].unit for t in targets}
    reason = (
        unreachable(top, targets, units, d, len(X))
        if len(top)
        else design_mod.why_infeasible(evaluator, search.broken_, int(search.feasible_.sum()))
    )
    names = list(evaluator.targets)
    corr = {
        f"{a}~{b}": round(float(evaluator.R[i, j]), 3)
        for i, a in enumerate(names)
        for j, b in enumerate(names)
        if i < j and evaluator.R is not None
    }
    return Designed(top, ranked, hit_rate, space, targets, units, reason, corr)


def unreachable(top: pd.DataFrame, targets: dict, units: dict, design, searched: int) -> str | None:
    """Why no recipe has a real chance (every p_hit below design.min_p_hit), in words with the closest predicted
    values and the number of recipes `searched`; None when one has (or when there is no recipe at all: the
    caller says that)."""
    if not len(top) or top["p_hit"].max() >= design.min_p_hit:
        return None
    best = top.iloc[0]
    near = ", ".join(
        f"{t} {best[f'{t}_pred']:.4g} ± {best[f'{t}_std']:.2g} {units[t]} for {v:g}" for t, v in targets.items()
    )
    return (
        f"the targets look unreachable with these models and constraints: none of the {searched} recipes searched "
        f"has P(all targets within tolerance) >= {design.min_p_hit:g} (best {top['p_hit'].max():.2f}; the first "
        f"predicts {near}); relax a target or a constraint, or search longer (optimizer pop_size x n_gen)"
    )


# what a holdout must show before the recipes' σ and "in domain" are trusted: 1σ coverage near 0.68, σ ranking
# the errors, and enough held-out cards, some of them in domain, to check the flag at all
WEAK_COVERAGE = (0.5, 0.85)
WEAK_MIN_HOLDOUT = 20


def weak_answer(metrics: dict) -> list[str]:
    """Why this run's holdout cannot vouch for its recipes (empty when it can): σ miscalibrated, σ not ranking the
    errors, too few held-out cards, or none of them in domain (the domain flag unchecked)."""
    out = []
    n = metrics.get("n_holdout_rows")
    if n is not None and n < WEAK_MIN_HOLDOUT:
        out.append(f"only {n} held-out cards to check σ and the domain on (fewer than {WEAK_MIN_HOLDOUT})")
    cov = metrics.get("coverage_1sigma")
    if cov is not None and np.isfinite(cov) and not WEAK_COVERAGE[0] <= cov <= WEAK_COVERAGE[1]:
        out.append(f"σ miscalibrated on the holdout: 1σ covers {cov:.2f} of the errors, not about 0.68")
    rho = metrics.get("sigma_error_spearman")
    if rho is not None and np.isfinite(rho) and rho <= 0:
        out.append(f"σ does not rank the holdout's errors (Spearman ρ {rho:.2f})")
    if n and "holdout_in_domain_share" in metrics and metrics.get("holdout_mae_in_domain") is None:
        out.append("no held-out card was in domain: the in-domain flag could not be checked")
    return out


def scored_by_simulator(data) -> bool:
    """The demo simulator scores recipes only for the packaged demo cards (data.path null): a lab's own file under
    a config copied from the demo's keeps `ground_truth: true`, and the simulator's metallurgy is not theirs."""
    return bool(data.ground_truth) and data.path is None


def run(cfg, run_dir: Path, metrics: dict, clean: Cleaned | None = None, train: Trained | None = None) -> Designed:
    models, data, cleaning, master, cfg = _models(cfg, clean, train)
    if data.ground_truth and not scored_by_simulator(data):
        log.warning(
            "data.ground_truth is the demo simulator: it scores only the packaged demo cards, not data.path=%s; "
            "no ground-truth column or design_hit_rate is written (set data.ground_truth=false to silence this)",
            data.path,
        )
    out = recommend(cfg, models, data, cleaning, master)
    top, ranked, targets = out.recommendations, out.candidates, out.targets
    if not len(top):
        log.warning("no feasible recipe for targets %s: %s; recommendations.csv is empty", targets, out.reason)
    elif out.reason:
        log.warning("%s; recommendations.csv lists the closest recipes", out.reason)
    if out.reason:
        metrics["design_reason"] = out.reason
    if out.error_correlation:
        metrics["p_hit_error_correlation"] = out.error_correlation
    weak = weak_answer(metrics) if train is not None else []
    if weak and len(top):  # this run's own model: its holdout says whether σ and the domain flag can be trusted
        why = "; ".join(weak)
        log.warning("the recipes are UNVALIDATED: %s", why)
        top = top.assign(validated=False, note=[f"UNVALIDATED ({why})" + (f"; {n}" if n else "") for n in top["note"]])
        metrics["recipes_unvalidated"] = why
    elif len(top):
        top = top.assign(validated=True)
    _write(cfg, run_dir, top, ranked, data, out.space, targets, out.units)
    metrics.update(
        n_recommendations=int(len(top)),
        n_feasible=int(len(ranked)),
        best_distance=float(ranked["distance"].min()) if len(ranked) else None,
        design_targets=",".join(f"{t}={v:g}" for t, v in targets.items()),
        optimizer=cfg.optimizer.name,
    )
    if out.hit_rate is not None:
        metrics["design_hit_rate"] = out.hit_rate
    return out


def _write(
    cfg, run_dir: Path, top: pd.DataFrame, ranked: pd.DataFrame, data, space, targets: dict, units: dict
) -> None:
    elements = [*space.schema.elements, space.schema.balance]
    design_mod.with_units(top, units, elements).to_csv(run_dir / "recommendations.csv", index=False)
    if not any(spec.temp_column for spec in data.schedules.values()):  # schedules as strings: cards can be written
        design_mod.as_raw_cards(top, data).to_csv(run_dir / "recommended_cards.csv", index=False)
    design_mod.with_units(ranked, units, elements).to_csv(run_dir / "pareto_candidates.csv", index=False)
    if len(ranked):
        (run_dir / "plots").mkdir(exist_ok=True)
        plots.design_front(
            ranked, run_dir / "plots" / "design_pareto.png", targets, dict(cfg.design.tolerance), len(top), units
        )
    if cfg.summary:
        report.print_recommendations(
            top,
            targets,
            space.schema.elements,
            [*data.categoricals, *space.schema.numeric, *(f"{s}_schedule_readable" for s in space.schema.schedules)],
        )
