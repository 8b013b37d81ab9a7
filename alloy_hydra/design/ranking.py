"""The ranking: the chance of every target together (p_hit, joint over the targets' correlated errors), the
ranked recipe table, why nothing was feasible, and the recipes as data cards."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from .. import cards as cards_mod
from .. import schedule
from ..schema import GROUP_COL
from .search import Evaluation, Evaluator, feasible  # noqa: F401
from .space import Space, cost_index, n_additions  # noqa: F401

log = logging.getLogger(__name__)


def constraint_words(name: str, design) -> str:
    """A constraint of Evaluator.constraints as a metallurgist would say it."""
    if "<=" in name:
        a, b = name.split("<=")
        return f"{a} at most {b}"
    if name.startswith("min:"):
        return f"{name[4:]} at least {design.min[name[4:]]:g}"
    if name == "max_additions":
        return f"at most {design.max_additions} alloying additions"
    if name == "max_cost":
        return f"cost index at most {design.max_cost:g}"
    return {
        "adequate_homog": "a homogenisation the cleaning rule accepts (design.adequate_homog)",
        "adequate_recryst": "a final anneal that recrystallises (design.adequate_recryst)",
        "domain": "inside the applicability domain (near tested cards; design.domain=exclude)",
    }.get(name, name)


def why_infeasible(evaluator: Evaluator, broken: np.ndarray, n_searched_ok: int) -> str:
    """Why no recipe is left, in words: which constraint blocks (the share of tried recipes breaking each, and
    the one that alone rules out the most), or that every recipe meeting them sits outside the domain."""
    d, names = evaluator.design, evaluator.constraints
    n = len(broken)
    if n_searched_ok:  # met every constraint in the search, then failed the report's whole domain rule
        return (
            f"all {n_searched_ok} recipes that meet the constraints lie outside the applicability domain (far from "
            "tested cards, or the formula and its reference model disagree there); relax a target or a constraint"
        )
    if not names or not n:
        return "no recipe was found"
    share = broken.mean(axis=0)
    alone = (broken & (broken.sum(axis=1) == 1)[:, None]).sum(axis=0)
    order = np.argsort(-share)
    parts = ", ".join(f"{constraint_words(names[j], d)} ({100 * share[j]:.0f} %)" for j in order if share[j] > 0)
    text = f"none of the {n} recipes tried meets every constraint; broken: {parts}"
    if alone.max() > 0:
        text += f"; the one that alone rules out the most: {constraint_words(names[int(np.argmax(alone))], d)}"
        return text + "; relax it, a target or the family"
    return text + "; relax a constraint, a target or the family"


def error_correlation(models: dict, cards: pd.DataFrame, min_cards: int = 10) -> np.ndarray:
    """The correlation of the targets' standardised errors (measured − predicted, over σ) on the cards that carry
    every target's label: YS and UTS errors move together (the same alloy is under-predicted for both), so the
    chance of hitting both is not the product of the two. Identity with one target or fewer than `min_cards`
    such cards; off-diagonals clipped to ±0.95 so the matrix stays positive definite. In-sample errors of the
    models on their own cards, as the registry's versions carry no out-of-fold predictions."""
    names = list(models)
    R = np.eye(len(names))
    if len(names) < 2 or not all(t in cards for t in names):
        return R
    both = cards[cards[names].notna().all(axis=1)]
    if len(both) < min_cards:
        return R
    Z = []
    for t in names:
        mean, std = models[t].predict(both)[:2]
        Z.append((both[t].to_numpy(float) - mean) / np.maximum(std, 1e-9))
    C = np.corrcoef(np.vstack(Z))
    C = np.where(np.isfinite(C), C, 0.0)
    return np.clip(C, -0.95, 0.95) * (1 - np.eye(len(names))) + np.eye(len(names))


def joint_hit_probability(pred: dict, std: dict, targets: dict, tol: dict, R: np.ndarray, n: int = 4096):
    """P(every target within tolerance) for errors Normal(0, σ) with correlation R (error_correlation): one
    target exactly; several by randomised quasi-Monte Carlo (a fixed-seed scrambled Sobol sequence, so the same
    recipe always gets the same chance; error ~1e-3)."""
    names = list(targets)
    if len(names) == 1:
        t = names[0]
        return hit_probability(pred[t], std[t], targets[t], tol[t])
    from scipy.stats import norm, qmc

    s = {t: np.maximum(np.asarray(std[t], float), 1e-9) for t in names}
    lo = np.column_stack([(targets[t] - tol[t] - np.asarray(pred[t], float)) / s[t] for t in names])
    hi = np.column_stack([(targets[t] + tol[t] - np.asarray(pred[t], float)) / s[t] for t in names])
    marginal = norm.cdf(hi) - norm.cdf(lo)
    out = marginal.prod(axis=1)  # where a target is all but missed, the joint chance is ~0 either way
    todo = np.flatnonzero(marginal.min(axis=1) >= 1e-3)
    U = qmc.Sobol(len(names), scramble=True, seed=0).random(n)
    Z = norm.ppf(np.clip(U, 1e-12, 1 - 1e-12)) @ np.linalg.cholesky(R).T
    for a in range(0, len(todo), 256):  # candidates x samples x targets in blocks
        b = todo[a : a + 256]
        inside = (Z[None, :, :] >= lo[b, None, :]) & (Z[None, :, :] <= hi[b, None, :])
        out[b] = inside.all(axis=2).mean(axis=1)
    return out


def rank(evaluator: Evaluator, X: np.ndarray, master: pd.DataFrame, id_columns, ok=None) -> pd.DataFrame:
    """Feasible candidates, scored (normalised distance to targets + cost + simplicity + confidence) and
    de-duplicated; out-of-domain candidates never rank above in-domain ones unless configured. ok: which rows
    of X are feasible, when the search already knows (_Search.feasible_)."""
    idx = np.flatnonzero(feasible(evaluator, evaluator(X)) if ok is None else ok)
    evaluator.R = error_correlation({t: evaluator.models[t] for t in evaluator.targets}, master)
    if not len(idx):  # a well-formed, empty table: the columns of a ranked candidate, no rows
        return _table(evaluator, X[:1], master, id_columns).iloc[:0]
    out = _table(evaluator, X[idx], master, id_columns)
    if evaluator.design.domain == "exclude":  # the report's domain also asks the reference models
        out = out[out["in_domain"]].reset_index(drop=True).assign(rank=lambda t: np.arange(1, len(t) + 1))
    return out


def _nearest_card(space, X: np.ndarray, master: pd.DataFrame, id_columns) -> tuple[np.ndarray, np.ndarray]:
    """Each recipe's nearest real card in the recipe space: its ids (and row in the user's file), its distance."""
    rspace = cards_mod.RecipeSpace(space.table, space.schema)
    nn = NearestNeighbors(n_neighbors=1).fit(rspace(space.table))
    rec = space.recipes(X)
    for t in space.schema.targets:
        rec[t] = space.table[t].mean()
    d, j = nn.kneighbors(rspace(rec.reindex(columns=space.table.columns)))
    ids = [c for c in id_columns if c in master] or [GROUP_COL]
    near = master.iloc[j[:, 0]]
    label = near[ids].astype(str).agg(" / ".join, axis=1)
    if "source_row" in near:  # the row in the user's file: an id such as "Unspecified" names no card
        label = label + " / row " + near["source_row"].astype(str)
    return label.to_numpy(), np.round(d[:, 0], 3)


def _best_per_neighbourhood(out: pd.DataFrame, cards: pd.DataFrame, space, domain: str) -> pd.DataFrame:
    """The recipes ranked, one per neighbourhood, as a metallurgist would tell recipes apart: composition to
    0.1 wt%, reductions to 5 %, the categoricals and schedule types, the final anneal's peak temperature to 10 °C
    (so recipes that differ only in ingot thickness, hold minutes or grain size are one recommendation)."""
    key = out[space.schema.elements].round(1).astype(str).agg("|".join, axis=1)
    for col in space.schema.numeric:
        if space.data.numeric[col].kind == "percent":
            key += "|" + (out[col] / 5).round().astype(str)
    for col in [c for c in out.columns if c.endswith("_type") or c in space.data.categoricals]:
        key += "|" + out[col].astype(str)
    for name in space.schema.schedules:
        if space.data.schedules[name].kind == "recryst" and f"{name}_temp_max_C" in cards:
            key += "|" + (cards[f"{name}_temp_max_C"].to_numpy() / 10).round().astype(str)
    # p_hit is the first key (to 0.01: cost, simplicity and depth in the domain break near-ties), as the README
    # says; in-domain recipes before the others unless design.domain=ignore
    order = ["in_domain", "_p", "score"] if domain != "ignore" else ["_p", "score"]
    asc = [False, False, True] if domain != "ignore" else [False, True]
    out = out.assign(_key=key.to_numpy(), _p=out["p_hit"].round(2)).sort_values(order, ascending=asc, kind="stable")
    out = out.loc[~out["_key"].duplicated()].drop(columns=["_key", "_p"]).reset_index(drop=True)  # the best of each
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _table(evaluator: Evaluator, X: np.ndarray, master: pd.DataFrame, id_columns) -> pd.DataFrame:
    ev = evaluator(X, with_std=True)
    targets = evaluator.targets
    dev = {t: ev.pred[t] - v for t, v in targets.items()}
    dist = np.sqrt(np.mean([(dev[t] / evaluator.tol[t]) ** 2 for t in targets], axis=0))
    p_hit = {t: hit_probability(ev.pred[t], ev.std[t], v, evaluator.tol[t]) for t, v in targets.items()}
    R = np.eye(len(targets)) if evaluator.R is None else evaluator.R
    p_all = joint_hit_probability(ev.pred, ev.std, targets, evaluator.tol, R)
    w = evaluator.design.weights
    # rank by the chance that the cast recipe lands within tolerance, not by the prediction alone: a search keeps
    # the recipes a model over-predicts (the optimiser's curse), and sigma (large where the formula and its
    # reference disagree or the recipe is far from tested cards) is what says which those are; then cost,
    # simplicity and how deep inside the applicability domain the recipe sits
    score = (
        (1.0 - p_all) + w.cost * (ev.cost - 1.0) + w.simplicity * ev.additions / 10.0 + w.confidence * ev.domain_ratio
    )
    c = ev.cards
    space = evaluator.space
    out = pd.DataFrame({"score": score, "p_hit": np.round(p_all, 4), "distance": dist, "in_domain": ev.in_domain})
    for el in space.schema.elements + [space.schema.balance]:
        out[el] = c[el].round(3)
    for col in list(space.data.categoricals) + list(space.schema.numeric):
        out[col] = c[col].round(2) if col in space.schema.numeric else c[col]
    for name in space.schema.schedules:
        if f"{name}_schedule" in c:
            out[f"{name}_schedule"] = c[f"{name}_schedule"].to_numpy()
            out[f"{name}_schedule_readable"] = [schedule.human(schedule.parse(v)) for v in c[f"{name}_schedule"]]
        if f"{name}_type" in c:
            out[f"{name}_type"] = c[f"{name}_type"].to_numpy()
    for t, v in targets.items():
        out[f"{t}_target"] = v
        out[f"{t}_pred"] = np.round(ev.pred[t], 3)
        out[f"{t}_std"] = np.round(ev.std[t], 3)
        out[f"{t}_dev"] = np.round(dev[t], 3)
        out[f"{t}_within_tol"] = np.abs(dev[t]) <= evaluator.tol[t]
        out[f"{t}_p_hit"] = np.round(p_hit[t], 4)
    out["cost_index"] = np.round(ev.cost, 4)
    out["n_additions"] = ev.additions
    out["domain_ratio"] = np.round(ev.domain_ratio, 3)
    out["nearest_card"], out["nearest_distance"] = _nearest_card(space, X, master, id_columns)
    out["note"] = _notes(out, c, targets)
    return _best_per_neighbourhood(out, c, space, evaluator.design.domain)


def hit_probability(pred, std, target: float, tol: float) -> np.ndarray:
    """P(|Y - target| <= tol) for Y ~ Normal(pred, std): the chance a recipe's measured value lands in tolerance."""
    from scipy.stats import norm

    s = np.maximum(np.asarray(std, float), 1e-9)
    pred = np.asarray(pred, float)
    return norm.cdf((target + tol - pred) / s) - norm.cdf((target - tol - pred) / s)


def _notes(out, cards, targets) -> list[str]:
    notes = []
    for r in range(len(out)):
        n = []
        if not out["in_domain"].iat[r]:
            n.append("OUT OF DOMAIN: far from tested cards, or the formula and its reference model disagree")
        if all(out[f"{t}_within_tol"].iat[r] for t in targets):
            n.append("all targets within tolerance (predicted)")
        if "Sc" in cards and cards["Sc"].iat[r] > 0.05:
            n.append("Sc-bearing (costly)")
        if "recryst_type" in cards and cards["recryst_type"].iat[r] == "other":
            n.append("partial / recovery anneal")
        if "recryst_type" in cards and cards["recryst_type"].iat[r] == "none":
            n.append("as rolled (no final anneal)")
        notes.append("; ".join(n))
    return notes


_INVERSE_UNITS = {"length": "mm", "grain": "um", "percent": "", "plain": ""}


def as_raw_cards(recs: pd.DataFrame, data, prefix: str = "design") -> pd.DataFrame:
    """Recommended recipes written as data cards in the dataset's raw schema (the file a lab would fill in):
    cleaning and featurising them gives exactly the model inputs the designer scored."""
    rows = {}
    n = len(recs)
    for col in data.id_columns:
        rows[col] = [f"{prefix}-{r}" for r in recs["rank"]] if col == data.id_columns[0] else [""] * n
    for col in data.group_columns:
        rows.setdefault(col, [f"{prefix}-{r}" for r in recs["rank"]])
    scale = 0.01 if data.composition_unit == "fraction" else 1.0
    for el, col in data.composition_columns.items():
        rows[col] = [f"{v * scale:.6g}" for v in recs[el]]
    if data.balance_column:
        rows[data.balance_column] = ["bal"] * n
    for name, col in data.categoricals.items():
        rows[col] = recs[name].astype(str).tolist()
    for name, spec in data.numeric.items():  # canonical units (mm, µm, %) written with their unit
        unit = _INVERSE_UNITS.get(spec.kind, "")
        rows[spec.column] = [f"{v:g} {unit}".strip() for v in recs[name]]
    for name, spec in data.schedules.items():
        if spec.column:
            rows[spec.column] = recs[f"{name}_schedule"].fillna("").tolist()
        if spec.type_column:
            rows[spec.type_column] = recs[f"{name}_type"].tolist()
    for col in data.targets.values():
        rows[col] = [""] * n
    return pd.DataFrame(rows)


_PER_TARGET = ("target", "pred", "std", "dev", "truth")  # the columns of a target that carry its unit


def with_units(table: pd.DataFrame, units: dict, elements) -> pd.DataFrame:
    """The ranked table as written to recommendations.csv / pareto_candidates.csv: every column that has a unit
    says it in its name (YS_pred_MPa, FractureEL_std_pct, Mg_wt_pct); the in-memory table keeps the short
    names the code uses. p_hit, cost_index (relative to the cheapest base), domain_ratio are unitless."""
    safe = {"%": "pct", "°C": "C", "µm": "um"}
    names = {el: f"{el}_wt_pct" for el in elements if el in table}
    for t, unit in units.items():
        u = safe.get(unit, unit)
        if u:
            names.update({f"{t}_{k}": f"{t}_{k}_{u}" for k in _PER_TARGET if f"{t}_{k}" in table})
    return table.rename(columns=names)


def without_units(table: pd.DataFrame) -> pd.DataFrame:
    """recommendations.csv read back with the code's short names (the inverse of with_units)."""
    names = {}
    for col in table.columns:
        if col.endswith("_wt_pct"):
            names[col] = col[: -len("_wt_pct")]
        else:
            head, _, unit = col.rpartition("_")
            stem = head.rpartition("_")[2]
            if stem in _PER_TARGET and unit in ("MPa", "pct", "C", "um"):
                names[col] = head
    return table.rename(columns=names)
