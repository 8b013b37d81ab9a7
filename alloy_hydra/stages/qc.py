"""Stage qc: are the synthetic rows fit to train on? Acceptance checks, utility on the holdout (reported,
never deciding) and the qc.on_fail policy (a failed QC never feeds training silently)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import factory, report
from .. import qc as qc_mod
from ..errors import QCFailed
from ..features import unit_of
from ..io import write_json
from .generate import Generated
from .split import Split

log = logging.getLogger(__name__)


@dataclass
class Checked:
    synth_cards: pd.DataFrame  # the synthetic cards training may use (none after a fallback)
    used: str  # the generator whose rows training gets ("none" after a fallback)
    report: dict  # generation_report.json


def _key_features(train: pd.DataFrame, schema, target: str, n: int = 5) -> list[str]:
    cols = [c for c in schema.continuous if c != target and train[c].nunique() > 2]
    corr = train[cols + [target]].corr("spearman")[target].drop(target).abs().sort_values(ascending=False)
    return list(corr.index[:n])


def run(cfg, run_dir: Path, metrics: dict, split: Split, generate: Generated) -> Checked:
    target, gen = cfg.target.name, generate
    synth_cards, used = gen.synth_cards, gen.used
    util, ev = _check(cfg, run_dir, split, gen)
    result = {
        "generator": cfg.generator.name,
        "generator_used": used,
        "target": target,
        "thresholds": cfg.thresholds.name,
        "holdout_used_for": "utility only (reported, never decides)",
        "utility": util,
    }
    if gen.augmentation is not None:
        result["augmentation"] = gen.augmentation
    if ev is not None:
        result.update(ev)
        acc = ev["acceptance"]
        metrics.update(
            qc_pass=acc["overall_pass"],
            ks_median_stat=ev["ks_median_stat"],
            ks_median_p=ev["ks_median_p"],
            corr_mae=ev["corr_mae"],
            dcr_ratio=ev["memorisation"]["dcr_ratio"],
            near_duplicates_pct=ev["memorisation"]["near_duplicates_pct"],
            clip_rate_pct=ev["postprocess"]["clip_rate_pct"],
            balance_ratio=ev["classes"]["balance_ratio"],
        )
        if cfg.summary:
            report.print_acceptance(acc, f"QC · {used} · {target} · thresholds={cfg.thresholds.name}")
        if acc["overall_pass"] is False:
            result["on_fail"], keep = apply_qc_policy(cfg.qc.on_fail, used, metrics)
            if not keep:
                synth_cards, used = synth_cards.iloc[:0], "none"
    else:
        result["acceptance"] = {"checks": [], "overall_pass": None, "note": "generator=none: no synthetic rows"}
        metrics.update(qc_pass=None)
    if not len(synth_cards) or not cfg.qc.plots:  # the README lists them: say why they are not there
        why = "qc.plots=false" if len(synth_cards) else f"no synthetic rows (generator used: {used})"
        result["plots"] = f"real_vs_synthetic.png and correlation_difference.png not drawn: {why}"
        log.info("%s", result["plots"])
    write_json(run_dir / "generation_report.json", result)
    metrics.update(
        {k: util.get(k) for k in ("tstr_r2", "tstr_mae", "aug_r2", "aug_mae", "real_only_r2", "real_only_mae")}
    )
    return Checked(synth_cards, used, result)


def _check(cfg, run_dir: Path, split: Split, gen: Generated):
    """The utility figures (holdout, reported only) and, with synthetic rows, the acceptance checks and plots."""
    target, synth_cards = cfg.target.name, gen.synth_cards
    with report.steps(f"QC {target}", 3 if len(synth_cards) else 1) as doing:
        doing("utility: gbm on real / synthetic / both, scored on the holdout")
        util = qc_mod.utility(
            factory.card_featuriser(cfg.data), target, split.train, synth_cards, split.holdout, cfg.seed
        )
        ev = None
        if len(synth_cards):
            doing("acceptance checks: composition, KS, correlations, memorisation")
            ev, corr_diff = qc_mod.evaluate(
                gen.train_table,
                gen.synth_table,
                synth_cards,
                gen.schema,
                qc_mod.Rules.of(cfg),
                post=gen.post,
                classes=gen.quota,
            )
            if cfg.qc.plots:
                doing("plots")
                qc_mod.plots(
                    gen.train_table,
                    gen.synth_table,
                    target,
                    corr_diff,
                    run_dir / "plots",
                    _key_features(gen.train_table, gen.schema, target),
                    {c: unit_of(c, cfg.data) for c in gen.train_table.columns} | {target: cfg.target.unit},
                )
    return util, ev


def apply_qc_policy(policy: str, generator: str, metrics: dict) -> tuple[str, bool]:
    """What a failed QC does to training (qc.on_fail): fallback_real (default) trains on the real rows only,
    stop ends the run, continue trains on the failing rows; each says so on screen and in run.log.
    Returns (what was done, whether training keeps the synthetic rows)."""
    if policy == "stop":
        raise QCFailed(f"QC of the {generator} rows failed (generation_report.json) and qc.on_fail=stop")
    if policy == "fallback_real":
        log.warning("QC of the %s rows FAILED: training on the real rows only (qc.on_fail=fallback_real)", generator)
        metrics.update(generator_used="none", qc_fallback=True)
        return "fallback_real: synthetic rows dropped, training on real rows only", False
    log.warning("QC of the %s rows FAILED and qc.on_fail=continue: training on them anyway", generator)
    return "continue: training on the rows that failed QC", True
