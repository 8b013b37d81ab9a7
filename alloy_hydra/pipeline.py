"""The run: named stages in order, each a plain function of (config, run dir, state) that writes artifacts.

Hydra-free: `run(cfg, run_dir)` works with any OmegaConf config of the schema in alloy_hydra.config.
`status.json` says running / complete / failed, and `metrics.json` is written only when every stage finished,
so a failed run never looks complete.
"""
from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import audit as audit_mod, cards as cards_mod, clean as clean_mod, design as design_mod, expr
from . import generate as gen_mod, ground_truth, plots
from . import config as config_mod, qc as qc_mod, report, train as train_mod
from .model import Committee, Model
from .regress import FixedModel
from .errors import AlloyHydraError, ConfigError, QCFailed
from .features import Featuriser, default_columns, describe
from .io import job_dirs, read_cards, write_json
from .split import split_groups

log = logging.getLogger(__name__)


class RunState(dict):
    """What stages hand to later stages (DataFrames, models) plus the flat metrics dict."""

    @property
    def metrics(self) -> dict:
        return self.setdefault("_metrics", {})


def data_path(data) -> Path:
    """The cards file of a data config (config.data_file; the embedded demo cards by default)."""
    from .demo import demo_path
    return config_mod.data_file(data) or demo_path()


def stage_clean(cfg, run_dir: Path, state: RunState) -> None:
    config_mod.check_data(cfg)
    path = data_path(cfg.data)
    raw = read_cards(path, delimiter=cfg.data.delimiter)
    result = clean_mod.clean(raw, cfg.data, cfg.chem_window, cfg.cleaning, source=path)
    view, view_report = clean_mod.make_view(result.master, cfg.target)
    if view.empty:
        raise ConfigError(f"no {cfg.target.name} labels left after cleaning {path} "
                          f"({result.report['rows_rejected']} of {result.report['rows_in']} rows rejected; "
                          f"reasons {result.report['reject_reasons']})")
    targets = list(cfg.data.targets)
    result.master.to_csv(run_dir / "BASE_MASTER.csv", index=False)
    view.to_csv(run_dir / "view.csv", index=False)
    result.rejects.to_csv(run_dir / "rejects.csv", index=False)
    clean_mod.coverage(result.master, targets).to_csv(run_dir / "coverage.csv", index=False)
    clean_mod.labels_needed(result.master, targets, list(cfg.data.id_columns)).to_csv(
        run_dir / "labels_needed.csv", index=False)
    write_json(run_dir / "cleaning_report.json", {**result.report, "view": view_report})
    state.update(master=result.master, view=view, raw_path=path)
    r = result.report
    state.metrics.update(rows_in=r["rows_in"], rows_kept=r["rows_kept"], rows_rejected=r["rows_rejected"],
                         view_rows=view_report["view_rows"], view_groups=int(view[clean_mod.GROUP_COL].nunique()),
                         target_clipped=view_report["clipped_low"] + view_report["clipped_high"])


def stage_split(cfg, run_dir: Path, state: RunState) -> None:
    view = state["view"]
    if view[clean_mod.GROUP_COL].nunique() < 5:
        raise ConfigError(f"only {view[clean_mod.GROUP_COL].nunique()} groups in the view: too few to hold any out")
    train, holdout, info = split_groups(view, cfg.split.holdout_fraction, cfg.seed)
    write_json(run_dir / "split.json", info)
    hold = set(info["holdout_groups"])
    view.assign(split=np.where(view[clean_mod.GROUP_COL].isin(hold), "holdout", "train")).to_csv(
        run_dir / "view.csv", index=False)
    state.update(train=train, holdout=holdout)
    state.metrics.update({k: info[k] for k in ("n_train_rows", "n_holdout_rows", "n_train_groups",
                                               "n_holdout_groups")})


def make_generator(cfg, node=None):
    """Instantiate a generator config (default: the run's `generator`; Hydra `_target_`) with the run's seed."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    node = cfg.generator if node is None else node
    params = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    # an auto candidate takes generator.n_per_class when it sets none of its own
    n_per_class = params.pop("n_per_class", None) or cfg.generator.get("n_per_class") or cfg.target.n_per_class
    for part in (params.get("parts") or {}).values():   # a blend's parts take their counts from the blend
        part.pop("n_per_class", None)
    return instantiate(params, seed=cfg.seed, _convert_="all"), int(n_per_class)


def synthesise(cfg, train: pd.DataFrame, node=None) -> dict:
    """Fit a generator on real train cards and sample: the recipe tables, the synthetic cards (is_synthetic=1,
    source_generator, source_group) and the post-processing report."""
    schema = cards_mod.schema_of(train, cfg.data)
    table = cards_mod.encode(train, schema, cfg.data)
    groups = train[clean_mod.GROUP_COL]
    coarse_col = cfg.data.coarse_group_column
    coarse = train[coarse_col] if coarse_col and coarse_col in train else None
    generator, n_per_class = make_generator(cfg, node)
    generator.fit(table, groups, schema, coarse=coarse)
    raw_synth = generator.sample(n_per_class)
    synth, post = gen_mod.postprocess(raw_synth, table, schema, cfg.chem_window)
    synth_cards, repairs = cards_mod.decode(synth, schema, cfg.data, cfg.cleaning)
    post["repairs"] = repairs
    if hasattr(generator, "class_shortfall_"):
        post["classes_short"] = len(generator.class_shortfall_)
    synth_cards[clean_mod.GROUP_COL] = synth[gen_mod.SOURCE].to_numpy()
    made_by = synth[gen_mod.PART].to_numpy() if gen_mod.PART in synth else generator.name
    synth_cards = synth_cards.assign(is_synthetic=1, source_generator=made_by,
                                     source_group=synth[gen_mod.SOURCE].to_numpy())
    return {"schema": schema, "train_table": table, "synth_table": synth, "synth_cards": synth_cards, "post": post,
            "classes": sorted(groups.unique()), "n_per_class": n_per_class}


def choose_augmentation(cfg, train: pd.DataFrame) -> dict:
    """generator=auto: do the candidate generator's rows help? Decided on an inner split of the real train
    groups (the holdout is never used): the candidate is fitted on the inner-train groups, and a hinge formula
    (deterministic, the default engine's own path) is fitted on the inner-train cards with and without its rows
    and scored on the inner-validation groups. The rows are kept only if they lower that MAE by min_gain."""
    from .regress import HingeRegressor
    g = cfg.generator
    inner, val, _ = split_groups(train, g.inner_holdout, cfg.seed)
    synth = synthesise(cfg, inner, g.candidate)["synth_cards"]
    target = cfg.target.name
    synth = synth[synth[target].notna()]
    scores = {}
    for name, rows in (("real", inner), ("augmented", pd.concat([inner, synth], ignore_index=True))):
        feat = make_featuriser(cfg).fit(rows)
        est = HingeRegressor(feature_names=feat.columns_).fit(feat.transform(rows), rows[target].to_numpy(float))
        pred = est.predict(feat.transform(val))
        scores[name] = float(np.mean(np.abs(pred - val[target].to_numpy(float))))
    keep = scores["augmented"] < (1.0 - g.min_gain) * scores["real"]
    return {"candidate": g.candidate.name, "chosen": g.candidate.name if keep else "none",
            "inner_mae_real": scores["real"], "inner_mae_augmented": scores["augmented"],
            "n_inner_train_groups": int(inner[clean_mod.GROUP_COL].nunique()),
            "n_inner_val_groups": int(val[clean_mod.GROUP_COL].nunique()), "min_gain": float(g.min_gain),
            "scored_by": "hinge formula, MAE on the inner-validation groups of the real train cards",
            "reason": (f"{g.candidate.name} rows lower the inner-validation MAE {scores['real']:.4g} -> "
                       f"{scores['augmented']:.4g}" if keep else
                       f"{g.candidate.name} rows do not lower the inner-validation MAE by {100 * g.min_gain:g} % "
                       f"({scores['real']:.4g} real only, {scores['augmented']:.4g} augmented): real rows only")}


def stage_generate(cfg, run_dir: Path, state: RunState) -> None:
    train = state["train"]                       # real train groups only: the holdout never reaches here
    node, used = None, cfg.generator.name
    if cfg.generator.name == "auto":
        decision = choose_augmentation(cfg, train)
        state["augmentation"] = decision
        used = decision["chosen"]
        node = cfg.generator.candidate if used != "none" else {"_target_": "alloy_hydra.generate.NoGenerator",
                                                               "name": "none"}
        log.info("generator=auto: %s", decision["reason"])
        state.metrics.update(auto_inner_mae_real=decision["inner_mae_real"],
                             auto_inner_mae_augmented=decision["inner_mae_augmented"])
    out = synthesise(cfg, train, node)
    out["synth_cards"].to_csv(run_dir / "synthetic.csv", index=False)
    state.update(out, generator_used=used)
    state.metrics.update(generator=cfg.generator.name, generator_used=used,
                         n_synthetic=int(len(out["synth_cards"])), n_per_class=out["n_per_class"])


def _key_features(train: pd.DataFrame, schema, target: str, n: int = 5) -> list[str]:
    cols = [c for c in schema.continuous if c != target and train[c].nunique() > 2]
    corr = train[cols + [target]].corr("spearman")[target].drop(target).abs().sort_values(ascending=False)
    return list(corr.index[:n])


def stage_qc(cfg, run_dir: Path, state: RunState) -> None:
    target, synth_cards = cfg.target.name, state["synth_cards"]
    featuriser = Featuriser(*default_columns(cfg.data))
    with report.steps(f"QC {target}", 3 if len(synth_cards) else 1) as doing:
        doing("utility: gbm on real / synthetic / both, scored on the holdout")
        util = qc_mod.utility(featuriser, target, state["train"], synth_cards, state["holdout"], cfg.seed)
        ev = None
        if len(synth_cards):
            doing("acceptance checks: composition, KS, correlations, memorisation")
            ev = qc_mod.evaluate(state["train_table"], state["synth_table"], synth_cards, state["schema"], target,
                                 cfg.chem_window, cfg.thresholds, state["post"], state["classes"],
                                 cfg.qc.near_dup_fraction)
            corr_diff = ev.pop("_corr_diff")
            if cfg.qc.plots:
                doing("plots")
                qc_mod.plots(state["train_table"], state["synth_table"], target, corr_diff, run_dir / "plots",
                             _key_features(state["train_table"], state["schema"], target))
    used = state.get("generator_used", cfg.generator.name)
    result = {"generator": cfg.generator.name, "generator_used": used, "target": target,
              "thresholds": cfg.thresholds.name, "holdout_used_for": "utility only (reported, never decides)",
              "utility": util}
    if "augmentation" in state:
        result["augmentation"] = state["augmentation"]
    if ev is not None:
        result.update(ev)
        acc = ev["acceptance"]
        state.metrics.update(qc_pass=acc["overall_pass"], ks_median_stat=ev["ks_median_stat"],
                             ks_median_p=ev["ks_median_p"], corr_mae=ev["corr_mae"],
                             dcr_ratio=ev["memorisation"]["dcr_ratio"],
                             near_duplicates_pct=ev["memorisation"]["near_duplicates_pct"],
                             clip_rate_pct=ev["postprocess"]["clip_rate_pct"],
                             balance_ratio=ev["classes"]["balance_ratio"])
        if cfg.summary:
            report.print_acceptance(acc, f"QC · {used} · {target} · thresholds={cfg.thresholds.name}")
        if acc["overall_pass"] is False:
            result["on_fail"] = apply_qc_policy(cfg.qc.on_fail, used, state)
    else:
        result["acceptance"] = {"checks": [], "overall_pass": None, "note": "generator=none: no synthetic rows"}
        state.metrics.update(qc_pass=None)
    write_json(run_dir / "generation_report.json", result)
    state.metrics.update({k: util.get(k) for k in ("tstr_r2", "tstr_mae", "aug_r2", "aug_mae", "real_only_r2",
                                                   "real_only_mae")})


def apply_qc_policy(policy: str, generator: str, state) -> str:
    """What a failed QC does to training (qc.on_fail): fallback_real (default) trains on the real rows only,
    stop ends the run, continue trains on the failing rows; each says so on screen and in run.log."""
    if policy == "stop":
        raise QCFailed(f"QC of the {generator} rows failed (generation_report.json) and qc.on_fail=stop")
    if policy == "fallback_real":
        log.warning("QC of the %s rows FAILED: training on the real rows only (qc.on_fail=fallback_real)", generator)
        state["synth_cards"] = state["synth_cards"].iloc[:0]
        state["generator_used"] = "none"
        state.metrics.update(generator_used="none", qc_fallback=True)
        return "fallback_real: synthetic rows dropped, training on real rows only"
    log.warning("QC of the %s rows FAILED and qc.on_fail=continue: training on them anyway", generator)
    return "continue: training on the rows that failed QC"


def unit_of(name: str, data) -> str:
    if name in data.composition_columns or name == data.balance_element:
        return "wt%"
    for suffix, unit in (("_C", "°C"), ("_s", "s"), ("_pct", "%"), ("_um", "µm"), ("_mm", "mm")):
        if name.endswith(suffix):
            return unit
    return ""


def make_featuriser(cfg) -> Featuriser:
    """The run's featuriser (unfitted): the data schema's columns minus train.exclude, plus its interactions."""
    numeric, categorical = default_columns(cfg.data)
    return Featuriser([c for c in numeric if c not in cfg.train.exclude], categorical, list(cfg.data.interactions))


def make_regressor(cfg, feature_names):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    params = OmegaConf.to_container(cfg.regressor, resolve=True)
    params.pop("name", None)
    return instantiate(params, feature_names=list(feature_names), seed=cfg.seed, _convert_="all")


def training_cards(cfg, state) -> pd.DataFrame:
    """The rows the regressor learns from, each with its CV group (`_cv_group`)."""
    real = state["train"].assign(_cv_group=state["train"][clean_mod.GROUP_COL], is_synthetic=0)
    synth = state.get("synth_cards")
    parts = []
    if cfg.train.data in ("real", "synthetic+real") or synth is None or not len(synth):
        parts.append(real)
    if cfg.train.data in ("synthetic", "synthetic+real") and synth is not None and len(synth):
        parts.append(synth.assign(_cv_group=synth["source_group"]))
    if cfg.train.data not in ("real", "synthetic", "synthetic+real"):
        raise ConfigError(f"train.data must be real, synthetic or synthetic+real, not {cfg.train.data!r}")
    out = pd.concat(parts, ignore_index=True)
    return out[out[cfg.target.name].notna()].reset_index(drop=True)


def stage_train(cfg, run_dir: Path, state: RunState) -> None:
    target = cfg.target.name
    cards = training_cards(cfg, state)
    fit = train_mod.fit_property_model(cards, state["train"], target, cfg.target.unit, make_featuriser(cfg),
                                       lambda names: make_regressor(cfg, names), dict(cfg.target.physics),
                                       cfg.train, cfg.seed, label=cfg.regressor.name,
                                       rederive=lambda c: cards_mod.rederive(c, cfg.data, cfg.cleaning))
    model, why, table = fit.model, fit.why, fit.table
    used = state.get("generator_used", cfg.generator.name)
    model.info.update(regressor=cfg.regressor.name, generator=used, train_data=cfg.train.data,
                      data=cfg.data.name)
    model.save(run_dir / "model.json")
    main, complexity = model.main, model.info["complexity"]
    units = {c: unit_of(c, cfg.data) for c in model.features}
    if main["kind"] == "expression":
        text = expr.to_lines(main["expr"], 5, units)
        n_real = model.info["n_real_rows"]
        rows = (f"{n_real} real rows" if n_real == model.info["n_train_rows"] else
                f"{n_real} real + {model.info['n_train_rows'] - n_real} synthetic rows ({used})")
        sm, u = model.sigma_model, cfg.target.unit
        sigma = (f"σ = {sm['b0']:.3g} {u} + {sm['b_gap']:.3g}·|S − gbm reference| + {sm['b_dist']:.3g} {u}·distance "
                 f"ratio + {sm['b_level']:.3g}·|S| (combined with the ensemble spread), fitted on the real cards' "
                 f"out-of-fold errors" if sm else f"σ = sqrt(ensemble sd² + {model.sigma_resid:.3g}²)")
        elements = [*cfg.data.composition_columns, cfg.data.balance_element]
        glossary = "\n".join(f"  {v}: {describe(v, model.featuriser.categorical, elements)}"
                              for v in sorted(expr.variables(main["expr"])))
        (run_dir / "equation.txt").write_text(
            f"{target} [{cfg.target.unit}] = {text}\n\ncomplexity: {complexity} nodes\nchosen: {why}\n"
            f"regressor: {cfg.regressor.name}; trained on {rows}; grouped {cfg.train.cv_folds}-fold CV MAE on "
            f"the real cards {fit.cv['chosen']['mae']:.4g} {u}\nuncertainty: {sigma}\n\ninputs:\n{glossary}\n")
    else:
        (run_dir / "equation.txt").write_text(f"{target}: {cfg.regressor.name} is a tree ensemble "
                                              f"({len(main['trees'])} trees); no closed-form formula.\n")
    if table is not None:
        table.assign(chosen=table["id"] == fit.chosen_id).to_csv(run_dir / "pareto_front.csv", index=False)
        (run_dir / "plots").mkdir(exist_ok=True)
        plots.pareto(table, fit.chosen_id, run_dir / "plots" / "pareto_front.png")
    state.update(model=model, baselines=fit.baselines, cv=fit.cv, pareto=table, pert=fit.pert)
    state.metrics.update(cv_mae=fit.cv["chosen"]["mae"], cv_mae_procedure=fit.cv["procedure"]["mae"],
                         complexity=complexity, n_train_model_rows=model.info["n_train_rows"],
                         regressor=cfg.regressor.name)


def stage_audit(cfg, run_dir: Path, state: RunState) -> None:
    from sklearn.inspection import permutation_importance
    model, target = state["model"], cfg.target.name
    physics = audit_mod.audit(lambda Xp: train_mod.predict_model(model.main, Xp), state["pert"],
                              cfg.train.physics_min_fraction)
    hold = state["holdout"]
    Xh = model.featuriser.transform(hold)
    y = hold[target].to_numpy(float)
    mean, std, in_dom, dist = model.predict(hold, X=Xh.to_numpy(float))
    main = train_mod.metrics(y, mean)
    trust = train_mod.sigma_checks(mean - y, std) | domain_check(y, mean, in_dom)
    base = {k: train_mod.metrics(y, b.predict(Xh)) for k, b in state["baselines"].items()}
    per_class = (pd.DataFrame({"group": hold[clean_mod.GROUP_COL], "y": y, "pred": mean, "std": std})
                 .assign(abs_err=lambda d: (d.y - d.pred).abs())
                 .groupby("group").agg(n=("y", "size"), mae=("abs_err", "mean"), mean_std=("std", "mean"))
                 .reset_index())
    imp = permutation_importance(FixedModel(model.main).fit(), Xh, y, n_repeats=5, random_state=cfg.seed,
                                 scoring="neg_mean_absolute_error")
    pd.DataFrame({"feature": Xh.columns, "importance_mae": imp.importances_mean, "std": imp.importances_std}) \
        .sort_values("importance_mae", ascending=False).to_csv(run_dir / "feature_importance.csv", index=False)
    (run_dir / "plots").mkdir(exist_ok=True)
    plots.parity(y, {cfg.regressor.name: (mean, std), "gbm": (state["baselines"]["gbm"].predict(Xh), None),
                     "ridge": (state["baselines"]["ridge"].predict(Xh), None)}, target, cfg.target.unit,
                 run_dir / "plots" / "parity.png")
    report_ = {"target": target, "unit": cfg.target.unit, "holdout": {**main, **trust},
               "baselines_holdout": base, "cv": state["cv"], "physics": physics,
               "per_class": per_class.to_dict("records"), "model": model.info,
               "note": "holdout = real groups never seen by the generator or the regressor"}
    write_json(run_dir / "validation_report.json", report_)
    state.metrics.update(holdout_mae=main["mae"], holdout_rmse=main["rmse"], holdout_r2=main["r2"],
                         holdout_mape=main["mape"], physics_pass=physics["pass"], coverage_2sigma=trust["coverage_2sigma"],
                         physics_checks_applicable=physics["n_applicable"],
                         coverage_1sigma=trust["coverage_1sigma"],
                         sigma_error_spearman=trust["spearman_sigma_abs_error"],
                         holdout_in_domain_share=trust["in_domain_share"],
                         holdout_mae_in_domain=trust["mae_in_domain"], holdout_mae_out_domain=trust["mae_out_domain"],
                         sr_time_cap_fired=model.info.get("sr_time_cap_fired", 0),
                         baseline_ridge_r2=base["ridge"]["r2"], baseline_gbm_r2=base["gbm"]["r2"],
                         baseline_ridge_mae=base["ridge"]["mae"], baseline_gbm_mae=base["gbm"]["mae"])


def domain_check(y, mean, in_domain) -> dict:
    """Does the in-domain flag separate error? MAE of the cards flagged in and out, and the share in."""
    err = np.abs(np.asarray(y, float) - np.asarray(mean, float))
    inside = np.asarray(in_domain, bool)
    mae = (lambda m: float(err[m].mean()) if m.any() else None)
    return {"in_domain_share": float(inside.mean()) if len(inside) else None, "mae_in_domain": mae(inside),
            "mae_out_domain": mae(~inside), "n_out_domain": int((~inside).sum())}


def model_runs(paths, column: str = "chosen") -> list[Path]:
    """Run dirs holding a model: each path is a run dir, or a sweep dir whose jobs are searched (its
    model_comparison.csv, when it has `column`, names the runs to load)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    runs = []
    for p in paths:
        p = Path(str(p)).expanduser().resolve()
        if not p.exists():
            raise ConfigError(f"design.models: {p} does not exist")
        if (p / "model.json").exists():
            runs.append(p)
            continue
        chosen = p / "model_comparison.csv"
        if chosen.exists():
            table = pd.read_csv(chosen)
            if column in table and "run_dir" in table:
                runs += [Path(r) if Path(r).is_absolute() else p / r
                         for r in table.loc[table[column].astype(bool), "run_dir"]]
                continue
        runs += job_dirs(p, "model.json")
    if not runs:
        raise ConfigError(f"design.models: no model.json under {paths}")
    return runs


def load_design_models(paths, combine: str = "committee") -> tuple[dict, Path]:
    """Per target, the best model among the runs (physics pass first, then holdout R²; the sweep rule).
    combine=committee: the best run together with every other run of the same configuration (regressor,
    generator, training data: in practice the seeds of a sweep) and the same physics verdict, as one Committee;
    combine=best: the best run alone. Returns ({target: Model | Committee}, the best run of the first target)."""
    import json
    if combine not in ("committee", "best"):
        raise ConfigError(f"design.combine must be committee or best, not {combine!r}")
    by_target = {}
    for run in model_runs(paths, "committee" if combine == "committee" else "chosen"):
        metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
        model = Model.load(run / "model.json")
        key = (audit_mod.physics_rank(metrics.get("physics_pass")), metrics.get("holdout_r2") or -np.inf)
        by_target.setdefault(model.target, []).append((key, model, run))
    models, first = {}, None
    for target, runs in by_target.items():
        runs.sort(key=lambda r: r[0], reverse=True)
        (key, best, run) = runs[0]
        first = first or run
        same = [m for k, m, _ in runs if k[0] == key[0] and _config_of(m) == _config_of(best)]
        models[target] = Committee(same) if combine == "committee" and len(same) > 1 else best
    return models, first


def _config_of(model) -> tuple:
    return tuple(model.info.get(k) for k in ("regressor", "generator", "train_data"))


def stage_design(cfg, run_dir: Path, state: RunState) -> None:
    from omegaconf import OmegaConf
    from types import SimpleNamespace
    d = cfg.design
    if d.models:
        models, source = load_design_models(d.models, d.combine)
        src_cfg = OmegaConf.load(source / ".hydra" / "config.yaml")
        data, cleaning = src_cfg.data, src_cfg.cleaning
        master = pd.read_csv(source / "BASE_MASTER.csv", dtype={c: str for c in src_cfg.data.id_columns})
    elif "model" in state:
        models, data, cleaning, master = {cfg.target.name: state["model"]}, cfg.data, cfg.cleaning, state["master"]
    else:
        raise ConfigError("stage design needs a model: run the train stage before it or set design.models=<run or "
                          "sweep dir>")
    targets = {t: float(v) for t, v in d.targets.items() if v is not None} or {cfg.target.name: cfg.target.design_value}
    missing = [t for t in targets if t not in models]
    if missing:
        raise ConfigError(f"design.targets has {missing} but no model for them (models for {sorted(models)}); "
                          "train one per target (e.g. python run.py -m target=YS,UTS,FractureEL) and pass "
                          "design.models=<sweep dir>")
    fixed = dict(d.fixed)
    if d.casting:
        fixed["casting"] = d.casting
    master = design_mod.family_cards(master, d.family, d.families)
    try:
        space = design_mod.Space(master, data, cfg.chem_window, fixed, dict(d.bounds), list(d.stratify_by),
                                 list(d.outcomes), dict(d.support), list(d.allow), list(d.quantiles))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    design_mod.check_prices(space, dict(d.cost_weights))
    if space.unsupported:
        log.info("design: kept at the cards' typical value (held by < %g %% of %d cards; design.allow=[...] "
                 "frees them): %s", 100 * d.support.get("min_share", 0), len(master),
                 ", ".join(f"{el} ({100 * sh:.1f} %)" for el, sh in space.unsupported.items()))
    opts = SimpleNamespace(targets=targets, tolerance=dict(d.tolerance),
                           min={t: v for t, v in d.min.items() if v is not None}, cost_weights=dict(d.cost_weights),
                           adequate_homog=d.adequate_homog, adequate_recryst=d.adequate_recryst,
                           max_additions=d.max_additions, max_cost=d.max_cost, domain=d.domain, weights=d.weights)
    if d.domain not in ("exclude", "penalise", "ignore"):
        raise ConfigError(f"design.domain must be exclude, penalise or ignore, not {d.domain!r}")
    evaluator = design_mod.Evaluator(space, {t: models[t] for t in targets}, opts, cleaning)
    X = design_mod.optimise(evaluator, cfg.optimizer.name, cfg.optimizer.pop_size, cfg.optimizer.n_gen, cfg.seed)
    ranked = design_mod.rank(evaluator, X, master, list(data.id_columns), opts)
    top = ranked.head(d.top).copy()
    hit_rate = None
    if data.get("ground_truth") and len(top):
        truth = ground_truth.properties(top.drop(columns=["grain_size_um"], errors="ignore"))  # cast it: the
        hits = np.ones(len(top), bool)                        # recipe's own grain size, noise off
        for t in targets:
            top[f"{t}_truth"] = truth[t].round(3).to_numpy()
            hits &= (np.abs(truth[t] - targets[t]) <= d.tolerance.get(t, 1.0)).to_numpy()
        top["truth_hit"] = hits
        hit_rate = float(hits[: d.hit_top].mean())
    if not len(top):
        log.warning("no feasible recipe for targets %s under the constraints; recommendations.csv is empty",
                    targets)
    top.to_csv(run_dir / "recommendations.csv", index=False)
    if not any(spec.temp_column for spec in data.schedules.values()):   # schedules as strings: cards can be written
        design_mod.as_raw_cards(top, data).to_csv(run_dir / "recommended_cards.csv", index=False)
    ranked.to_csv(run_dir / "pareto_candidates.csv", index=False)
    if len(ranked):
        (run_dir / "plots").mkdir(exist_ok=True)
        plots.design_front(ranked, run_dir / "plots" / "design_pareto.png")
    if cfg.summary:
        report.print_recommendations(top, targets, space.schema.elements,
                                     [*data.categoricals, *space.schema.numeric,
                                      *(f"{s}_schedule_readable" for s in space.schema.schedules)])
    state.metrics.update(n_recommendations=int(len(top)), n_feasible=int(len(ranked)),
                         best_distance=float(ranked["distance"].min()) if len(ranked) else None,
                         design_targets=",".join(f"{t}={v:g}" for t, v in targets.items()),
                         optimizer=cfg.optimizer.name)
    if hit_rate is not None:
        state.metrics["design_hit_rate"] = hit_rate


STAGES: dict[str, Callable] = {"clean": stage_clean, "split": stage_split, "generate": stage_generate,
                               "qc": stage_qc, "train": stage_train, "audit": stage_audit, "design": stage_design}


REQUIRES = {"split": ["clean"], "generate": ["split"], "qc": ["generate"], "train": ["split"],
            "audit": ["train"]}   # design needs a model: this run's train stage or design.models


def check_options(cfg) -> None:
    """Config values with a fixed set of choices, checked before any work."""
    if cfg.qc.on_fail not in ("fallback_real", "stop", "continue"):
        raise ConfigError(f"qc.on_fail must be fallback_real, stop or continue, not {cfg.qc.on_fail!r}")
    if cfg.generator.name == "auto" and not 0 < cfg.generator.inner_holdout < 1:
        raise ConfigError(f"generator.inner_holdout must be between 0 and 1, not {cfg.generator.inner_holdout}")
    q = list(cfg.design.quantiles)
    if len(q) != 2 or not 0 <= q[0] <= q[1] <= 1:
        raise ConfigError(f"design.quantiles must be [low, high] with 0 <= low <= high <= 1, not {q}")
    if not 0 <= cfg.design.support.get("min_share", 0) <= 1:
        raise ConfigError(f"design.support.min_share must be a share in [0, 1], not {cfg.design.support.min_share}")


def check_stages(stages) -> list[str]:
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; built stages are {list(STAGES)}")
    for i, s in enumerate(stages):
        missing = [r for r in REQUIRES.get(s, []) if r not in stages[:i]]
        if missing:
            raise ConfigError(f"stage {s!r} needs {missing} before it in stages={list(stages)}")
    return list(stages)


def run(cfg, run_dir) -> dict:
    """Run the configured stages into run_dir; returns the flat metrics dict (also metrics.json)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").unlink(missing_ok=True)
    write_json(run_dir / "status.json", {"status": "running"})
    state = RunState()
    state.metrics.update(data=cfg.data.name, target=cfg.target.name)
    try:
        check_options(cfg)
        for name in check_stages(cfg.stages):
            t0 = time.perf_counter()
            log.info("stage %s", name)
            STAGES[name](cfg, run_dir, state)
            state.metrics[f"time_{name}_s"] = round(time.perf_counter() - t0, 3)
    except AlloyHydraError as err:
        write_json(run_dir / "status.json", {"status": "failed", "error": str(err), "kind": type(err).__name__})
        raise
    except Exception as err:
        write_json(run_dir / "status.json", {"status": "failed", "error": repr(err),
                                             "traceback": traceback.format_exc()})
        raise
    write_json(run_dir / "metrics.json", state.metrics)
    write_json(run_dir / "status.json", {"status": "complete"})
    return state.metrics
