"""QC of synthetic rows against the real train groups, and their utility on the real holdout groups.

Distribution checks compare recipe tables (real train vs synthetic). Near-duplicates and memorisation are
measured in a standardised recipe space: z-scores of every numeric column (real-train mean and sd) plus
one-hot categoricals. Cosine similarity on raw wt% would call any two Al alloys identical (Al ≈ 90-99 wt%
dominates every vector), so Euclidean distance in z-space is used: a synthetic row is a near-duplicate when
its distance to the closest real record (DCR) is below `near_dup_fraction` × the median real-to-real
nearest-neighbour distance. `dcr_ratio` = median DCR / that median: ≈ 1 means synthetic rows sit as far
from real rows as real rows sit from each other; ≪ 1 means copying.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.neighbors import NearestNeighbors

from .cards import RecipeSpace, Schema
from .clean import window_violations
from .generate import SOURCE

# (metric, op, threshold field, metric's possible range): a check whose threshold admits the whole range
# cannot fail and is reported as such, outside overall_pass.
CHECKS = [
    ("composition_sum_max_dev", "<=", "composition_sum_tol", (0.0, math.inf)),
    ("negatives", "<=", "negatives_max", (0.0, math.inf)),
    ("window_violations", "<=", "window_violations_max", (0.0, math.inf)),
    ("target_in_range_pct", ">=", "target_in_range_min_pct", (0.0, 100.0)),
    ("ks_median_p", ">=", "ks_p_min", (0.0, 1.0)),
    ("balance_ratio", "<=", "balance_ratio_max", (1.0, math.inf)),
    ("corr_mae", "<=", "corr_mae_max", (0.0, 2.0)),
    ("near_duplicates_pct", "<=", "near_duplicates_max_pct", (0.0, 100.0)),
    ("clip_rate_pct", "<=", "clip_rate_max_pct", (0.0, 100.0)),
]


def acceptance(values: dict, thresholds, composition_sum_tol: float) -> dict:
    """Each check's value against its threshold (a ThresholdsConfig; the composition sum obeys the cleaning
    rule's tolerance, the one the cards obey)."""
    checks = []
    for metric, op, field, (lo, hi) in CHECKS:
        th = float(composition_sum_tol if field == "composition_sum_tol" else getattr(thresholds, field))
        v = values.get(metric)
        cannot_fail = (op == "<=" and th >= hi) or (op == ">=" and th <= lo)
        ok = v is not None and not (isinstance(v, float) and math.isnan(v)) and (v <= th if op == "<=" else v >= th)
        checks.append(
            {"check": metric, "value": v, "op": op, "threshold": th, "pass": bool(ok), "cannot_fail": bool(cannot_fail)}
        )
    counted = [c for c in checks if not c["cannot_fail"]]
    return {
        "checks": checks,
        "overall_pass": bool(counted) and all(c["pass"] for c in counted),
        "n_checks_counted": len(counted),
        "cannot_fail": [c["check"] for c in checks if c["cannot_fail"]],
    }


def _ks_and_distances(real: pd.DataFrame, synth: pd.DataFrame, cols) -> dict:
    per = {}
    for c in cols:
        a, b = real[c].to_numpy(float), synth[c].to_numpy(float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
            continue
        ks = stats.ks_2samp(a, b)
        scale = np.std(a) or 1.0
        lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
        bins = np.linspace(lo, hi, 21) if hi > lo else np.array([lo - 0.5, hi + 0.5])
        pa, pb = np.histogram(a, bins)[0] / len(a), np.histogram(b, bins)[0] / len(b)
        per[c] = {
            "ks_stat": float(ks.statistic),
            "ks_p": float(ks.pvalue),
            "wasserstein_scaled": float(stats.wasserstein_distance(a, b) / scale),
            "hist_overlap": float(np.minimum(pa, pb).sum()),
            "real_range": [float(a.min()), float(a.max())],
            "synthetic_range": [float(b.min()), float(b.max())],
        }
    return per


def spearman_mae(real: pd.DataFrame, synth: pd.DataFrame, cols) -> tuple[float, pd.DataFrame]:
    cols = [c for c in cols if real[c].nunique() > 1 and synth[c].nunique() > 1]
    cr, cs = real[cols].corr("spearman"), synth[cols].corr("spearman")
    diff = cr - cs
    upper = diff.where(np.triu(np.ones(diff.shape, bool), k=1))
    vals = upper.abs().stack()
    return (float(vals.mean()) if len(vals) else float("nan")), diff


def memorisation(real: pd.DataFrame, synth: pd.DataFrame, schema: Schema, near_dup_fraction: float) -> dict:
    space = RecipeSpace(real, schema)
    xr, xs = space(real), space(synth)
    nn = NearestNeighbors(n_neighbors=2).fit(xr)
    rr = nn.kneighbors(xr)[0][:, 1]  # real -> nearest other real row
    dcr = nn.kneighbors(xs, n_neighbors=1)[0][:, 0]  # synthetic -> closest real record
    base = float(np.median(rr)) or 1e-12
    return {
        "dcr_median": float(np.median(dcr)),
        "dcr_p05": float(np.percentile(dcr, 5)),
        "real_nn_median": float(np.median(rr)),
        "dcr_ratio": float(np.median(dcr) / base),
        "near_dup_threshold": near_dup_fraction * base,
        "near_duplicates_pct": float(100.0 * np.mean(dcr < near_dup_fraction * base)),
        "exact_copies_pct": float(100.0 * np.mean(dcr < 1e-9)),
        "space": "z-scores of numeric recipe columns (real-train mean/sd) + one-hot categoricals",
    }


def _fit_score(featuriser, train_cards, y_train, test_cards, y_test, seed) -> dict:
    from sklearn.base import clone

    f = clone(featuriser).fit(train_cards)
    model = HistGradientBoostingRegressor(random_state=seed).fit(f.transform(train_cards), y_train)
    pred = model.predict(f.transform(test_cards))
    return {"r2": float(r2_score(y_test, pred)), "mae": float(mean_absolute_error(y_test, pred))}


def utility(featuriser, target: str, real_cards, synth_cards, holdout_cards, seed: int) -> dict:
    """Train on synthetic (and synthetic + real train), test on the real holdout; beside real-train-only."""
    y_hold = holdout_cards[target].to_numpy(float)
    out = {"model": "HistGradientBoostingRegressor", "n_holdout": int(len(holdout_cards))}
    real_only = _fit_score(featuriser, real_cards, real_cards[target], holdout_cards, y_hold, seed)
    out.update(real_only_r2=real_only["r2"], real_only_mae=real_only["mae"])
    if len(synth_cards):
        tstr = _fit_score(featuriser, synth_cards, synth_cards[target], holdout_cards, y_hold, seed)
        both = pd.concat([synth_cards, real_cards], ignore_index=True)
        aug = _fit_score(featuriser, both, both[target], holdout_cards, y_hold, seed)
        out.update(tstr_r2=tstr["r2"], tstr_mae=tstr["mae"], aug_r2=aug["r2"], aug_mae=aug["mae"])
    return out


@dataclass(frozen=True)
class Rules:
    """What synthetic rows are judged by, read from the run config in one place (`Rules.of`)."""

    target: str
    window: Any  # a ChemWindowConfig
    thresholds: Any  # a ThresholdsConfig
    near_dup_fraction: float  # qc.near_dup_fraction
    composition_sum_tol: float  # cleaning.composition_sum_tol: the rule the cards obey

    @classmethod
    def of(cls, cfg) -> Rules:
        return cls(
            cfg.target.name, cfg.chem_window, cfg.thresholds, cfg.qc.near_dup_fraction, cfg.cleaning.composition_sum_tol
        )


def _median(per: dict, key: str) -> float | None:
    return float(np.median([v[key] for v in per.values()])) if per else None


def evaluate(
    real: pd.DataFrame, synth: pd.DataFrame, synth_cards: pd.DataFrame, schema: Schema, rules: Rules, *, post, classes
) -> tuple[dict, pd.DataFrame]:
    """Everything but utility: real-train recipe table vs synthetic recipe table (+ its decoded cards).
    `post`: the post-processing counts; `classes`: the train groups or the rows asked of each (_class_balance).
    Returns (the report, the real - synthetic Spearman correlation difference matrix that `plots` draws)."""
    target = rules.target
    comp = _composition(synth_cards, schema, rules.window)
    lo, hi = float(real[target].min()), float(real[target].max())
    t = synth[target].to_numpy(float)
    in_range = float(100.0 * np.mean((t >= lo) & (t <= hi)))
    per = _ks_and_distances(real, synth, schema.continuous)
    feats = {c: v for c, v in per.items() if c != target}
    corr_mae, corr_diff = spearman_mae(real, synth, schema.continuous)
    by_class = _class_balance(synth, classes, post)
    mem = memorisation(real, synth, schema, rules.near_dup_fraction)
    nan = float("nan")
    values = {
        "composition_sum_max_dev": comp["sum_max_dev"],
        "negatives": comp["negatives"],
        "window_violations": comp["window_violations"],
        "target_in_range_pct": in_range,
        "ks_median_p": _median(feats, "ks_p") if feats else nan,
        "ks_median_stat": _median(feats, "ks_stat") if feats else nan,
        "balance_ratio": by_class["balance_ratio"],
        "corr_mae": corr_mae,
        "near_duplicates_pct": mem["near_duplicates_pct"],
        "clip_rate_pct": float(post.get("clip_rate_pct", 0.0)),
    }
    report = {
        "n_real_train": int(len(real)),
        "n_synthetic": int(len(synth)),
        "composition": comp,
        "target": {
            "name": target,
            "real_range": [lo, hi],
            "synthetic_range": [float(np.nanmin(t)), float(np.nanmax(t))] if len(t) else None,
            "in_range_pct": in_range,
            **per.get(target, {}),
        },
        "features": per,
        "ks_median_p": values["ks_median_p"],
        "ks_median_stat": values["ks_median_stat"],
        "wasserstein_scaled_median": _median(feats, "wasserstein_scaled"),
        "hist_overlap_median": _median(feats, "hist_overlap"),
        "classes": by_class,
        "corr_mae": corr_mae,
        "memorisation": mem,
        "postprocess": post,
        "acceptance": acceptance(values, rules.thresholds, rules.composition_sum_tol),
    }
    return report, corr_diff


def _composition(synth_cards: pd.DataFrame, schema: Schema, window) -> dict:
    """The synthetic cards' compositions: the sum, negatives, chem-window violations, each element's range."""
    elements = schema.elements + [schema.balance]
    sums = synth_cards[elements].sum(axis=1)
    comp = {
        "sum_mean": float(sums.mean()),
        "sum_std": float(sums.std(ddof=0)),
        "sum_max_dev": float((sums - 100).abs().max()),
        "negatives": int((synth_cards[elements] < 0).sum().sum()),
        "window_violations": int((window_violations(synth_cards[elements], window, schema.balance) != "").sum()),
        "element_bounds": {
            el: {
                "synthetic": [float(synth_cards[el].min()), float(synth_cards[el].max())],
                "window_max": window.max.get(el, window.unlisted_max),
            }
            for el in elements
        },
    }
    return comp


def _class_balance(synth: pd.DataFrame, classes, post: dict) -> dict:
    """Rows per class. `classes`: the train groups, or the rows asked of each (a Series, generate.quota): the
    balance ratio is then the spread of rows made per row asked, so a class asked for fewer rows (fewer real cards)
    is not an imbalance."""
    asked = classes if isinstance(classes, pd.Series) else pd.Series(1, index=list(classes))
    counts = synth[SOURCE].value_counts().reindex(asked.index, fill_value=0)
    # the balance judges what the generator gave each class, before the YS <= UTS gate dropped rows (counted and
    # judged on their own): with a quota of two rows, one dropped pair would otherwise read as an empty class
    made = counts + pd.Series(post.get("dropped_by_class", {}), dtype=float).reindex(asked.index, fill_value=0)
    filled = made / asked.clip(lower=1)
    balance = float(filled.max() / filled.min()) if filled.min() > 0 else math.inf
    return {
        "n_classes": len(asked),
        "rows_asked": int(asked.sum()) if isinstance(classes, pd.Series) else None,
        "classes_without_rows": int((counts == 0).sum()),
        "min": int(counts.min()),
        "max": int(counts.max()),
        "balance_ratio": balance,
    }


def plots(
    real: pd.DataFrame, synth: pd.DataFrame, target: str, corr_diff: pd.DataFrame, out_dir, key_features=(), units=None
):
    """real_vs_synthetic.png (the target and the inputs most correlated with it; `units`: column -> unit) and
    correlation_difference.png."""
    units = dict(units or {})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    cols = [target] + [c for c in key_features if c in real and c != target][:5]
    fig, axes = plt.subplots(2, 3, figsize=(12, 7))
    for ax, c in zip(axes.ravel(), cols):
        a, b = real[c].dropna(), synth[c].dropna()
        bins = np.histogram_bin_edges(pd.concat([a, b]), bins=25)
        ax.hist(a, bins, density=True, alpha=0.5, label="real train")
        ax.hist(b, bins, density=True, alpha=0.5, label="synthetic")
        ax.set_title(f"{c} [{units[c]}]" if units.get(c) else c, fontsize=10)
        ax.set_ylabel("density (share per unit)", fontsize=8)
    axes.ravel()[0].legend()
    fig.suptitle(f"real train cards vs synthetic rows: {target} and the inputs most related to it")
    for ax in axes.ravel()[len(cols) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_dir / "real_vs_synthetic.png", dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 8))
    im = ax.imshow(corr_diff.to_numpy(float), cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr_diff)), corr_diff.columns, rotation=90, fontsize=6)
    ax.set_yticks(range(len(corr_diff)), corr_diff.index, fontsize=6)
    ax.set_title("Spearman rank correlation, real train minus synthetic (0 = the same relation)")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(out_dir / "correlation_difference.png", dpi=90)
    plt.close(fig)
