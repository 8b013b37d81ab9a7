"""Stage generate: synthetic cards from the real train groups (the holdout never reaches here).

generator=auto keeps the candidate generator's rows only where they help (choose_augmentation)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import cards as cards_mod
from .. import factory, report
from .. import generate as gen_mod
from ..schema import GROUP_COL
from ..split import split_groups
from .split import Split

log = logging.getLogger(__name__)
NONE = {"_target_": "alloy_hydra.generate.NoGenerator", "name": "none"}


@dataclass
class Generated:
    schema: Any  # cards.Schema of the recipe table
    train_table: pd.DataFrame  # the real train cards as the generator's table
    synth_table: pd.DataFrame  # the generator's rows, post-processed
    synth_cards: pd.DataFrame  # ... decoded into cards (is_synthetic=1, source_generator, source_group)
    post: dict  # post-processing report
    quota: pd.Series  # rows asked of each train group (generate.quota: n_per_class, capped per real card)
    n_per_class: int
    used: str  # the generator whose rows these are (generator=auto: its decision)
    augmentation: dict | None = None  # generator=auto: the decision and its scores


def synthesise(cfg, train: pd.DataFrame, node=None) -> Generated:
    """Fit a generator on real train cards and sample: the recipe tables, the synthetic cards and the
    post-processing report."""
    schema = cards_mod.schema_of(train, cfg.data)
    table = cards_mod.encode(train, schema, cfg.data)
    groups = train[GROUP_COL]
    coarse_col = cfg.data.coarse_group_column
    coarse = train[coarse_col] if coarse_col and coarse_col in train else None
    generator = factory.generator(cfg, node)
    n_per_class = int(cfg.target.n_per_class)
    asked = gen_mod.quota(groups, n_per_class, cfg.target.max_synthetic_per_real)
    epochs = f", {generator.epochs} epochs" if getattr(generator, "kind", "") == "ctgan" else ""
    with report.steps(f"generate {generator.name}", 3) as doing:
        doing(f"fitting on {len(table)} real train cards{epochs}")
        generator.fit(table, groups, schema, coarse=coarse)
        doing(f"sampling {int(asked.sum())} rows for {len(asked)} classes (≤ {n_per_class} each{_cap(cfg)})")
        raw_synth = generator.sample(asked)
        doing("post-processing, decoding into cards")
        synth, post = gen_mod.postprocess(raw_synth, table, schema, cfg.chem_window)
        synth_cards, repairs = cards_mod.decode(synth, schema, cfg.data, cfg.cleaning)
    post["repairs"] = repairs
    if hasattr(generator, "class_shortfall_"):
        post["classes_short"] = len(generator.class_shortfall_)
    synth_cards[GROUP_COL] = synth[gen_mod.SOURCE].to_numpy()
    made_by = synth[gen_mod.PART].to_numpy() if gen_mod.PART in synth else generator.name
    synth_cards = synth_cards.assign(
        is_synthetic=1, source_generator=made_by, source_group=synth[gen_mod.SOURCE].to_numpy()
    )
    return Generated(schema, table, synth, synth_cards, post, asked, n_per_class, generator.name)


def _cap(cfg) -> str:
    per_real = cfg.target.max_synthetic_per_real
    return "" if per_real is None else f", ≤ {per_real:g} per real card"


def choose_augmentation(cfg, train: pd.DataFrame) -> dict:
    """generator=auto: do the candidate generator's rows help? Decided on an inner split of the real train
    groups (the holdout is never used): the candidate is fitted on the inner-train groups, and a hinge formula
    (deterministic, the default engine's own path) is fitted on the inner-train cards with and without its rows
    and scored on the inner-validation groups. The rows are kept only if they lower that MAE by min_gain."""
    from ..regress import HingeRegressor

    g = cfg.generator
    inner, val, _ = split_groups(train, g.inner_holdout, cfg.seed)
    synth = synthesise(cfg, inner, g.candidate).synth_cards
    target = cfg.target.name
    synth = synth[synth[target].notna()]
    scores = {}
    for name, rows in (("real", inner), ("augmented", pd.concat([inner, synth], ignore_index=True))):
        feat = factory.featuriser(cfg).fit(rows)
        est = HingeRegressor(feature_names=feat.columns_).fit(feat.transform(rows), rows[target].to_numpy(float))
        pred = est.predict(feat.transform(val))
        scores[name] = float(np.mean(np.abs(pred - val[target].to_numpy(float))))
    keep = scores["augmented"] < (1.0 - g.min_gain) * scores["real"]
    return {
        "candidate": g.candidate.name,
        "chosen": g.candidate.name if keep else "none",
        "inner_mae_real": scores["real"],
        "inner_mae_augmented": scores["augmented"],
        "n_inner_train_groups": int(inner[GROUP_COL].nunique()),
        "n_inner_val_groups": int(val[GROUP_COL].nunique()),
        "min_gain": float(g.min_gain),
        "scored_by": "hinge formula, MAE on the inner-validation groups of the real train cards",
        "reason": (
            f"{g.candidate.name} rows lower the inner-validation MAE {scores['real']:.4g} -> {scores['augmented']:.4g}"
            if keep
            else f"{g.candidate.name} rows do not lower the inner-validation MAE by {100 * g.min_gain:g} % "
            f"({scores['real']:.4g} real only, {scores['augmented']:.4g} augmented): real rows only"
        ),
    }


def run(cfg, run_dir: Path, metrics: dict, split: Split) -> Generated:
    node, decision = None, None
    if cfg.generator.name == "auto":
        decision = choose_augmentation(cfg, split.train)
        node = cfg.generator.candidate if decision["chosen"] != "none" else NONE
        log.info("generator=auto: %s", decision["reason"])
        metrics.update(
            auto_inner_mae_real=decision["inner_mae_real"], auto_inner_mae_augmented=decision["inner_mae_augmented"]
        )
    out = synthesise(cfg, split.train, node)
    out.augmentation = decision
    out.used = decision["chosen"] if decision else cfg.generator.name
    out.synth_cards.to_csv(run_dir / "synthetic.csv", index=False)
    metrics.update(
        generator=cfg.generator.name,
        generator_used=out.used,
        n_synthetic=int(len(out.synth_cards)),
        n_synthetic_asked=int(out.quota.sum()),
        n_per_class=out.n_per_class,
    )
    return out
