"""Stage train: a readable formula (or the configured engine's model) per property, with its ensemble, σ model
and applicability domain, saved as model.json; equation.txt says it in words."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import cards as cards_mod
from .. import expr, factory, forms, plots, report
from .. import train as train_mod
from ..features import describe, unit_of
from ..model import Model
from ..schema import GROUP_COL
from .generate import Generated
from .qc import Checked
from .split import Split


@dataclass
class Trained:
    model: Model
    baselines: dict  # ridge / gbm fitted on the same rows (the audit scores them on the holdout)
    cv: dict  # grouped CV figures of the chosen model and of the whole procedure
    pert: dict  # the physics checks' finite differences (physics.perturbations)


def training_cards(cfg, train: pd.DataFrame, synth: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows the regressor learns from, each with its CV group (`_cv_group`)."""
    real = train.assign(_cv_group=train[GROUP_COL], is_synthetic=0)
    parts = []
    if cfg.train.data in ("real", "synthetic+real") or synth is None or not len(synth):
        parts.append(real)
    if cfg.train.data in ("synthetic", "synthetic+real") and synth is not None and len(synth):
        parts.append(synth.assign(_cv_group=synth["source_group"]))
    out = pd.concat(parts, ignore_index=True)
    return out[out[cfg.target.name].notna()].reset_index(drop=True)


def fit_model(cfg, cards: pd.DataFrame, real: pd.DataFrame, progress=None) -> train_mod.Fit:
    """The run's training procedure (train.fit_property_model with this config's featuriser, regressor and
    options) on `cards` (with `_cv_group`); `real`: the real train cards (physics checks, domain)."""
    return train_mod.fit_property_model(
        cards,
        real,
        cfg.target,
        factory.featuriser(cfg),
        lambda names: factory.regressor(cfg, names),
        cfg.train,
        cfg.seed,
        rederive=lambda c: cards_mod.rederive(c, cfg.data, cfg.cleaning),
        progress=progress,
    )


def run(
    cfg, run_dir: Path, metrics: dict, split: Split, generate: Generated | None = None, qc: Checked | None = None
) -> Trained:
    synth = qc.synth_cards if qc else generate.synth_cards if generate else None
    used = qc.used if qc else generate.used if generate else cfg.generator.name
    cards = training_cards(cfg, split.train, synth)
    with report.TrainingProgress(f"{cfg.regressor.name} on {len(cards)} rows") as progress:
        fit = fit_model(cfg, cards, split.train, progress)
    model, table = fit.model, fit.table
    model.info.update(regressor=cfg.regressor.name, generator=used, train_data=cfg.train.data, data=cfg.data.name)
    model.save(run_dir / "model.json")
    sizes = train_mod.by_size(table) if table is not None else {}
    write_equation(cfg, run_dir, model, fit, used, sizes, split.train)
    if table is not None:
        table.assign(chosen=table["id"] == fit.chosen_id).to_csv(run_dir / "pareto_front.csv", index=False)
        (run_dir / "plots").mkdir(exist_ok=True)
        plots.pareto(table, fit.chosen_id, run_dir / "plots" / "pareto_front.png", cfg.target.name, cfg.target.unit)
    if table is not None:
        metrics.update(sizes)
    metrics["method"] = chosen_method(cfg, model, fit)
    metrics.update(
        cv_mae=fit.cv["chosen"]["mae"],
        cv_mae_procedure=fit.cv["procedure"]["mae"],
        complexity=model.info["complexity"],
        n_train_model_rows=model.info["n_train_rows"],
        regressor=cfg.regressor.name,
    )
    return Trained(model, fit.baselines, fit.cv, fit.pert)


def write_equation(cfg, run_dir: Path, model: Model, fit, used: str, sizes: dict, real=None) -> None:
    """equation.txt: the formula with units, what it says mechanism by mechanism on the `real` training cards,
    how it was chosen (with `sizes`, train.by_size of the front), its σ model and a glossary of its inputs."""
    target, why = cfg.target.name, fit.why
    main, complexity = model.main, model.info["complexity"]
    units = {c: unit_of(c, cfg.data) for c in model.features}
    if main["kind"] == "expression":
        text = expr.to_lines(main["expr"], 5, units, cfg.target.unit)
        inner, bounds = expr.unbound(main["expr"])
        size = (
            f"{expr.length(inner)} nodes in S (as in pareto_front.csv), {complexity} with the output bounds"
            if bounds is not None
            else f"{complexity} nodes"
        )
        n_real = model.info["n_real_rows"]
        rows = (
            f"{n_real} real rows"
            if n_real == model.info["n_train_rows"]
            else f"{n_real} real + {model.info['n_train_rows'] - n_real} synthetic rows ({used})"
        )
        sm, u = model.sigma_model, cfg.target.unit
        sigma = (
            f"σ = {sm['b0']:.3g} {u} + {sm['b_gap']:.3g}·|S − gbm reference| + {sm['b_dist']:.3g} {u}·distance "
            f"ratio + {sm['b_level']:.3g}·|S| (at least the ensemble spread), fitted on the real cards' "
            f"out-of-fold errors"
            if sm
            else f"σ = sqrt(ensemble sd² + {model.sigma_resid:.3g}²)"
        )
        elements = [*cfg.data.composition_columns, cfg.data.balance_element]
        balance = cfg.data.balance_element
        solute = (  # the balance element carries the solute effect with the opposite sign
            f" = 100 − the other elements: a term c·{balance} means −c {u} per wt% of total solute"
        )
        columns = {name: spec.column for name, spec in cfg.data.numeric.items()}
        glossary = "\n".join(
            f"  {v}: {describe(v, model.featuriser.categorical, elements, columns)}{solute if v == balance else ''}"
            for v in sorted(expr.variables(main["expr"]))
        )
        table = fit.table
        if table is not None:
            source = table.loc[fit.chosen_id, "source"]
            front = ", ".join(
                f"{sizes[f'cv_r2_le_{n}']:.3f} at ≤ {n} nodes" if sizes[f"cv_r2_le_{n}"] is not None else f"none ≤ {n}"
                for n in train_mod.SIZES
            )
            why = (
                f"{cfg.regressor.name} front → {source} member: {why}\n"
                f"front: best grouped-CV R² {front}; chosen {table.loc[fit.chosen_id, 'cv_r2']:.3f}"
            )
        summary = mechanisms(cfg, model, inner, real)
        (run_dir / "equation.txt").write_text(
            f"{target} [{cfg.target.unit}] = {text}\n\n{summary}complexity: {size}\nchosen: {why}\n"
            f"regressor: {cfg.regressor.name}; trained on {rows}; grouped {cfg.train.cv_folds}-fold CV MAE on "
            f"the real cards {fit.cv['chosen']['mae']:.4g} {u}\nuncertainty: {sigma}\n\ninputs:\n{glossary}\n"
        )
    else:
        (run_dir / "equation.txt").write_text(
            f"{target}: {cfg.regressor.name} is a tree ensemble ({len(main['trees'])} trees); no closed-form formula.\n"
        )


def mechanisms(cfg, model: Model, inner: dict, real) -> str:
    """The formula's terms grouped by strengthening mechanism (forms.by_mechanism) on the real training cards:
    how far each moves the prediction and its share of the prediction's variance, with the terms it holds."""
    if real is None or not len(real) or len(expr.terms(inner)) < 2:
        return ""
    X = model.featuriser.transform_array(real)
    cols = {n: X[:, i] for i, n in enumerate(model.features)}
    groups = forms.by_mechanism(inner, cols, cfg.data, model.featuriser.categorical)
    if not groups:
        return ""
    width = max(len(g["mechanism"]) for g in groups)
    lines = [
        f"  {g['mechanism']:<{width}}  moves it {g['range']:6.1f} {cfg.target.unit} (5–95 %), "
        f"{100 * g['share']:5.1f} % of its variance: {', '.join(g['inputs'])}"
        for g in groups
    ]
    return (
        f"by mechanism (the terms of S summed per mechanism over the {len(real)} real training cards):\n"
        + "\n".join(lines)
        + "\n\n"
    )


def chosen_method(cfg, model: Model, fit) -> str:
    """What was fitted, in one line: the engine, the member of its front chosen (a hinge path of operon's front
    is not operon's own formula) and the formula's size, e.g. "operon front → hinge-lars member, 8 terms"."""
    main = model.main
    if main["kind"] != "expression":
        return f"{cfg.regressor.name} ({main['kind']})"
    inner, _ = expr.unbound(main["expr"])
    n_terms = sum("const" not in t for _, t in expr.merge_terms(expr.terms(inner)))  # besides the constant
    if fit.table is None:
        return f"{cfg.regressor.name}, {n_terms} terms"
    source = fit.table.loc[fit.chosen_id, "source"]
    return f"{cfg.regressor.name} front → {source} member, {n_terms} terms"
