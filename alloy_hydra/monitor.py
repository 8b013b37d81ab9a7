"""Model monitoring: is a trained model still right on newly measured cards, and do the new cards still look like
the ones it was trained on?

For one model (a run dir or a registry version) and a file of new measured cards: the cards are cleaned with the
model's own rules (assistant.clean_for_prediction) and predicted (Model.predict); per target the error on the
labelled cards against the error recorded for that model (its holdout MAE), with a bootstrap-over-groups interval
for the change; per model input the drift of the new cards against the training cards (scipy.stats); the share
out of the applicability domain; and, where the cards name the recommendation they cast (query id or recipe id),
predicted against measured for the recommended recipes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import AlloyHydraError
from .schema import GROUP_COL, ROW_COL

RETRAIN_EXIT = 3  # the command's exit code when retraining is recommended (0 = fine, 2 = bad input)


@dataclass
class Subject:
    """What is monitored: a model with its training config, training cards and recorded error."""

    name: str  # YS:3, or the run dir
    model: object  # Model | Committee
    config: object  # its typed run config
    master: pd.DataFrame  # the cleaned cards it was trained from
    reference_mae: float | None  # the holdout MAE recorded when it was made (CV MAE without a holdout)
    history: Path  # where checks of this model are appended


def from_run(run_dir) -> Subject:
    from .config import load_run_config
    from .model import Model

    run_dir = Path(run_dir)
    if not (run_dir / "model.json").exists():
        raise AlloyHydraError(f"{run_dir} has no model.json (did the run include the train stage?)")
    cfg = load_run_config(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    master = pd.read_csv(run_dir / "BASE_MASTER.csv", dtype={c: str for c in cfg.data.id_columns})
    return Subject(
        str(run_dir),
        Model.load(run_dir / "model.json"),
        cfg,
        master,
        _recorded(metrics),
        run_dir.parent / "monitor_history.csv",
    )


def from_registry(registry, spec: str) -> Subject:
    from .registry import Registry, parse

    reg = registry if isinstance(registry, Registry) else Registry(registry)
    target, ref = parse(spec)
    v = reg.load(target, ref)
    return Subject(v.ref, v.model, v.config, v.master, _recorded(v.card["metrics"]), reg.path / "monitor_history.csv")


def _recorded(metrics: dict) -> float | None:
    """The error a model was made with: its holdout MAE, or its grouped-CV MAE where it had no holdout (a
    campaign's models train on every card)."""
    value = metrics.get("holdout_mae")
    return value if value is not None else metrics.get("cv_mae")


# --- error on new cards ---------------------------------------------------------------------------------------------
def _mae(err: np.ndarray) -> float:
    return float(np.mean(np.abs(err))) if len(err) else float("nan")


def bootstrap_mae(err: np.ndarray, groups: np.ndarray, n: int, seed: int, level: float):
    """Percentile interval of the MAE when whole groups (alloys) are resampled: cards of one alloy err together."""
    rng = np.random.default_rng(seed)
    labels, idx = np.unique(groups, return_inverse=True)
    sums = np.bincount(idx, weights=np.abs(err), minlength=len(labels))
    counts = np.bincount(idx, minlength=len(labels))
    draws = rng.integers(0, len(labels), size=(n, len(labels)))
    maes = sums[draws].sum(axis=1) / np.maximum(counts[draws].sum(axis=1), 1)
    return float(np.quantile(maes, (1 - level) / 2)), float(np.quantile(maes, 1 - (1 - level) / 2))


def error_check(y, pred, groups, reference_mae, settings) -> dict:
    err = np.asarray(pred, float) - np.asarray(y, float)
    out = {
        "n_cards": int(len(err)),
        "n_groups": int(len(np.unique(groups))),
        "mae": _mae(err),
        "rmse": float(np.sqrt(np.mean(err**2))) if len(err) else float("nan"),
        "bias": float(np.mean(err)) if len(err) else float("nan"),
        "reference_mae": reference_mae,
    }
    if not len(err) or not reference_mae:
        out.update(change_pct=None, change_ci_pct=None, drift=False, verdict="no labelled cards or no recorded MAE")
        return out
    lo, hi = bootstrap_mae(err, groups, settings.bootstrap, settings.seed, settings.confidence)
    change = out["mae"] / reference_mae - 1
    out["change_pct"] = 100 * change
    out["change_ci_pct"] = [100 * (lo / reference_mae - 1), 100 * (hi / reference_mae - 1)]
    enough = len(err) >= settings.min_cards
    # drift: MAE up by more than the allowed share, and the interval says the rise is real (its lower end above
    # the recorded MAE), on enough cards to tell
    out["drift"] = bool(enough and change > settings.max_mae_increase and lo > reference_mae)
    if not enough:
        out["verdict"] = f"too few labelled cards ({len(err)} < monitor.min_cards={settings.min_cards})"
    elif out["drift"]:
        out["verdict"] = (
            f"MAE {out['mae']:.3g} is {100 * change:.0f} % above the recorded {reference_mae:.3g} "
            f"(interval {out['change_ci_pct'][0]:.0f} … {out['change_ci_pct'][1]:.0f} %): retraining recommended"
        )
    else:
        out["verdict"] = f"MAE {out['mae']:.3g} vs recorded {reference_mae:.3g} ({100 * change:+.0f} %): fine"
    return out


# --- data drift ------------------------------------------------------------------------------------------------------
def data_drift(train: pd.DataFrame, new: pd.DataFrame, numeric, categorical, settings) -> list[dict]:
    """Per input: numbers by the KS test and the Wasserstein distance in training sds; categories by χ² on the
    level counts and the Jensen-Shannon distance of the level shares. A feature drifts when the test rejects
    (p < monitor.p_value) and the shift is large (W / sd > monitor.max_shift_sd or JS > monitor.max_js)."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

    rows = []
    for c in numeric:
        a = pd.to_numeric(train[c], errors="coerce").dropna().to_numpy(float)
        b = pd.to_numeric(new[c], errors="coerce").dropna().to_numpy(float)
        if len(a) < 2 or len(b) < 2:
            continue
        sd = float(np.std(a)) or 1.0
        ks = ks_2samp(a, b)
        shift = float(wasserstein_distance(a, b)) / sd
        drift = bool(ks.pvalue < settings.p_value and shift > settings.max_shift_sd)
        rows.append(
            {"feature": c, "kind": "number", "ks": float(ks.statistic), "p_value": float(ks.pvalue),
             "shift_sd": shift, "train_mean": float(np.mean(a)), "new_mean": float(np.mean(b)), "drift": drift}
        )  # fmt: skip
    for c in categorical:
        a, b = train[c].astype(str), new[c].astype(str)
        levels = sorted(set(a) | set(b))
        counts = np.array([[int((a == lv).sum()) for lv in levels], [int((b == lv).sum()) for lv in levels]])
        if len(levels) < 2 or counts[1].sum() == 0:
            continue
        p = float(chi2_contingency(counts + 0.5).pvalue)  # +0.5: a level one side lacks still counts
        js = float(jensenshannon(counts[0] / counts[0].sum(), counts[1] / counts[1].sum(), base=2))
        shares = [np.round(n / n.sum(), 3).tolist() for n in counts]
        drift = bool(p < settings.p_value and js > settings.max_js)
        rows.append(
            {"feature": c, "kind": "category", "p_value": p, "js": js, "drift": drift,
             "train_shares": dict(zip(levels, shares[0])), "new_shares": dict(zip(levels, shares[1]))}
        )  # fmt: skip
    return rows


# --- the design loop -------------------------------------------------------------------------------------------------
def recommended_predictions(cards: pd.DataFrame, id_column: str, target: str, query_log=None, recommendations=None):
    """For measured cards that name the recommendation they cast: what was predicted for them. A card names a
    service answer by `query_id` + its recipe id (`design-<rank>`, the id the recipe card carried), or a run's
    recommendations.csv by the recipe id alone. Returns a frame (row, query_id, rank, predicted, std, target)."""
    out = []
    ids = cards[id_column].astype(str) if id_column in cards else pd.Series("", index=cards.index)
    ranks = ids.str.extract(r"^design-(\d+)$")[0]
    has = ranks.notna()
    if not has.any():
        return pd.DataFrame(columns=["row", "query_id", "rank", "predicted", "std", "target_value"])
    answers = {}
    if query_log is not None and Path(query_log).exists() and "query_id" in cards:
        from .answers import design_records

        qids = cards.loc[has, "query_id"].dropna().astype(str).unique()
        answers = {q: {c.rank: c for c in rec.candidates} for q, rec in design_records(query_log, qids).items()}
    recs = None
    if recommendations is not None:
        from .design import without_units

        recs = without_units(pd.read_csv(recommendations)).set_index("rank")
    for i in cards.index[has]:
        rank = int(ranks[i])
        qid = str(cards.at[i, "query_id"]) if "query_id" in cards and pd.notna(cards.at[i, "query_id"]) else ""
        pred = None
        if qid in answers and rank in answers[qid]:
            p = answers[qid][rank].predictions.get(target)
            pred = (p.pred, p.std, p.target) if p else None
        elif recs is not None and rank in recs.index and f"{target}_pred" in recs:
            r = recs.loc[rank]
            pred = (r[f"{target}_pred"], r[f"{target}_std"], r.get(f"{target}_target"))
        if pred is not None:
            value = None if pred[2] is None or pd.isna(pred[2]) else float(pred[2])
            row = int(cards.at[i, ROW_COL])
            out.append(
                {"row": row, "query_id": qid, "rank": rank, "predicted": float(pred[0]), "std": float(pred[1]),
                 "target_value": value}
            )  # fmt: skip
    return pd.DataFrame(out, columns=["row", "query_id", "rank", "predicted", "std", "target_value"])


# --- the whole check -------------------------------------------------------------------------------------------------
def _recommended(raw: pd.DataFrame, cfg, target: str, query_log, recommendations) -> dict:
    """The design loop: recipes the tool recommended that were cast and measured, predicted vs measured."""
    label_col = cfg.data.targets.get(target)
    id_col = cfg.data.id_columns[0] if cfg.data.id_columns else None
    recs = recommended_predictions(raw, id_col, target, query_log, recommendations) if id_col else None
    if recs is None or not len(recs) or label_col not in raw:
        return {"n": 0}
    measured = pd.to_numeric(raw.set_index(ROW_COL).loc[recs["row"], label_col], errors="coerce").to_numpy()
    recs = recs.assign(measured=measured).dropna(subset=["measured"])
    tol = cfg.design.tolerance.get(target)
    err = (recs["predicted"] - recs["measured"]).to_numpy(float)
    off = (recs["measured"] - recs["target_value"]).abs().to_numpy(float)
    return {
        "n": int(len(recs)),
        "mae": _mae(err),  # predicted vs measured, for the recipes the lab cast
        "bias": float(np.mean(err)) if len(err) else None,
        "within_1sigma": float(np.mean(np.abs(err) <= recs["std"].to_numpy(float))) if len(err) else None,
        "hit_rate": float(np.mean(off <= tol)) if len(err) and tol else None,  # measured within tolerance
        "recipes": recs.to_dict("records"),
    }


def _drift(subject: Subject, kept: pd.DataFrame, settings) -> list[dict]:
    """Each model input's drift between the model's training cards and the new ones."""
    model = subject.model
    feat = (model.models[0] if hasattr(model, "models") else model).featuriser  # a committee shares its inputs
    numeric = [c for c in feat.numeric if c in kept and c in subject.master]
    categorical = [c for c in feat.categorical if c in kept and c in subject.master]
    return data_drift(subject.master, kept, numeric, categorical, settings) if len(kept) else []


def check(subject: Subject, raw: pd.DataFrame, settings, source="cards", query_log=None, recommendations=None) -> dict:
    from .clean import clean_for_prediction

    model, cfg = subject.model, subject.config
    target = model.target
    result = clean_for_prediction(raw, cfg, source)
    kept = result.master
    report = {
        "model": subject.name,
        "target": target,
        "unit": model.unit,
        "source": str(source),
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "rows_in": int(len(raw)),
        "rows_rejected": int(len(result.rejects)),
        "reject_reasons": result.rejects["reason"].value_counts().to_dict() if len(result.rejects) else {},
    }
    labelled = kept[kept[target].notna()] if target in kept else kept.iloc[:0]
    report["rows_scored"] = int(len(labelled))
    report["rows_unlabelled"] = int(len(kept) - len(labelled))
    assert report["rows_in"] == report["rows_scored"] + report["rows_unlabelled"] + report["rows_rejected"]
    if len(kept):
        mean, std, in_dom, _ = model.predict(kept)
        kept = kept.assign(_pred=mean, _std=std, _in=in_dom)
        report["out_of_domain_share"] = float(1 - np.mean(in_dom))
    else:
        report["out_of_domain_share"] = None
    labelled = kept[kept[target].notna()] if len(kept) and target in kept else kept.iloc[:0]
    empty = np.array([])
    report["error"] = error_check(
        labelled[target].to_numpy(float) if len(labelled) else empty,
        labelled["_pred"].to_numpy(float) if len(labelled) else empty,
        labelled[GROUP_COL].to_numpy() if len(labelled) else empty,
        subject.reference_mae,
        settings,
    )
    drift = _drift(subject, kept, settings)
    report["data_drift"] = drift
    report["drifting_features"] = [d["feature"] for d in drift if d["drift"]]
    report["recommended"] = _recommended(raw, cfg, target, query_log, recommendations)
    report["retrain"] = bool(report["error"]["drift"])
    return report


def append_history(path: Path, report: dict) -> pd.DataFrame:
    row = {
        "time": report["time"],
        "model": report["model"],
        "target": report["target"],
        "source": report["source"],
        "n_cards": report["error"]["n_cards"],
        "mae": report["error"]["mae"],
        "reference_mae": report["error"]["reference_mae"],
        "change_pct": report["error"]["change_pct"],
        "drift": report["error"]["drift"],
        "drifting_features": ";".join(report["drifting_features"]),
        "out_of_domain_share": report["out_of_domain_share"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    old = pd.read_csv(path) if path.exists() else pd.DataFrame()
    table = pd.concat([old, pd.DataFrame([row])], ignore_index=True)
    table.to_csv(path, index=False)
    return table


def plot_history(table: pd.DataFrame, path: Path) -> None:
    """MAE of each check over time, one line per model version, its recorded MAE dashed."""
    from .plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    t = table.assign(time=pd.to_datetime(table["time"]))
    for name, part in t.groupby("model", sort=False):
        line = ax.plot(part["time"], part["mae"], "o-", label=f"{name}")[0]
        ref = part["reference_mae"].dropna()
        if len(ref):
            ax.axhline(float(ref.iloc[-1]), ls="--", color=line.get_color(), lw=1)
        flagged = part[part["drift"].astype(bool)]
        ax.scatter(flagged["time"], flagged["mae"], s=120, facecolors="none", edgecolors="red")
    ax.set_ylabel("MAE on new cards (dashed: recorded holdout MAE)")
    ax.set_xlabel("check time (UTC)")
    ax.set_title("model error over time (red ring: drift)")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":  # python -m alloy_hydra.monitor: the command lives in cli/monitor.py
    import sys

    from alloy_hydra.cli.monitor import main

    sys.exit(main())
