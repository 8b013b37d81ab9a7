"""Inverse design: search compositions + process recipes whose predicted properties hit targets.

Every candidate is a recipe-table row (alloy_hydra.cards): decoded into a data card by the same derivation as
cleaning, then featurised by each model's own featuriser — one feature path for training data and designs.

Decision vector (all real-coded, so pymoo's vectorised operators apply; discrete variables are category or
count indices kept integral by a rounding repair):
- element additions within the chem window ∩ the observed range (Al = balance, Σ = 100 by construction);
- categoricals (e.g. casting) and, per schedule, the step count or recryst type;
- process numbers and schedule steps as u ∈ [0, 1], mapped into the range observed in BASE_MASTER for the
  candidate's stratum (e.g. ingot thickness of DC vs CC, temperature/time of a flash vs a batch anneal), so a
  recipe never combines a flash-anneal type with a batch-anneal schedule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from sklearn.neighbors import NearestNeighbors

from . import cards as cards_mod
from . import schedule
from .config import DesignConfig, OptimizerConfig
from .errors import ConfigError
from .model import knn
from .schema import GROUP_COL

log = logging.getLogger(__name__)


ORDERED = (("YS", "UTS"), ("UniformEL", "FractureEL"))  # a <= b for every recipe designed for both


def contradictions(targets: dict, minimum: dict | None = None) -> list[tuple[str, str]]:
    """(property, why) for targets no alloy can meet together: a yield strength above the tensile strength (or a
    uniform elongation above the fracture elongation), as targets or as a minimum against the other's target."""
    out = []
    for a, b in ORDERED:
        lo = [(f"target {a}", targets.get(a)), (f"minimum {a}", (minimum or {}).get(a))]
        for what, v in lo:
            if v is not None and targets.get(b) is not None and v > targets[b]:
                out.append((a, f"{what} {v:g} is above target {b} {targets[b]:g}: {a} <= {b} for every alloy"))
    return out


def fixed_problems(fixed: dict, cards: pd.DataFrame, data) -> list[tuple[str, str]]:
    """(key, why) for each design.fixed entry the design space cannot take: a key that is no categorical of the
    cards (nor a schedule's type), or a level no card has."""
    keys = [c for c in data.categoricals if c in cards] + [f"{s}_type" for s in data.schedules if f"{s}_type" in cards]
    out = []
    for key, level in fixed.items():
        if key not in keys:
            out.append((key, f"not a categorical of the design space (it has: {', '.join(keys) or 'none'})"))
            continue
        levels = sorted(cards[key].dropna().astype(str).unique())
        if str(level) not in levels:
            out.append((key, f"{level!r} is not a level the cards hold ({', '.join(levels)})"))
    return out


@dataclass
class Var:
    name: str
    kind: str  # element | category | count | unit
    lo: float
    hi: float
    levels: list = field(default_factory=list)  # category levels
    stratum: list = field(default_factory=list)  # columns whose values select the mapped range (unit vars)


class Space:
    """Decision space built from the encoded BASE_MASTER, the chemistry window and config overrides."""

    def __init__(
        self,
        master: pd.DataFrame,
        data,
        window,
        fixed: dict | None = None,
        bounds: dict | None = None,
        stratify_by=("casting",),
        outcomes=(),
        support=None,
        allow=(),
        quantiles=None,
    ):
        self.data = data
        self.schema = cards_mod.schema_of(master, data)
        # numbers a card records but a caster cannot set (grain size follows from composition and route): not
        # decision variables; a recipe gets what the most similar tested recipes showed
        self.outcomes = [c for c in outcomes if c in self.schema.numeric]
        self.table = cards_mod.encode(master, self.schema, data).reset_index(drop=True)
        fixed, bounds = dict(fixed or {}), {k: list(v) for k, v in (bounds or {}).items()}
        problems = fixed_problems(fixed, self.table, data)
        if problems:
            raise ValueError("; ".join(f"design.fixed.{k}: {why}" for k, why in problems))
        # unset: design.support and design.quantiles, the space run.py searches
        support = {**DesignConfig().support, **(support or {})}
        quantiles = DesignConfig().quantiles if quantiles is None else quantiles
        min_share = float(support["min_share"])
        self.unsupported: dict[str, float] = {}  # element -> share of cards containing it (fixed at typical)
        self.vars: list[Var] = self._element_vars(
            window, bounds, float(support["min_wt"]), min_share, set(allow or ()), quantiles
        )
        self.vars += self._category_vars(fixed, min_share)
        self.vars += self._process_vars(fixed, [c for c in stratify_by if c in self.data.categoricals])
        self._typical_n = {}
        self._outcome = self._outcome_model()
        self.index = {v.name: i for i, v in enumerate(self.vars)}
        self.discrete = np.array([i for i, v in enumerate(self.vars) if v.kind in ("category", "count")], dtype=int)
        self._ranges = {v.name: self._unit_range(v, bounds) for v in self.vars if v.kind == "unit"}

    def _element_vars(self, window, bounds: dict, min_wt: float, min_share: float, allow: set, quantiles) -> list:
        """An element is free between the cards' quantiles (inside the window) where enough cards hold it;
        otherwise it stays at the cards' typical value (design.bounds overrides both)."""
        out = []
        for el in self.schema.elements:
            col = self.table[el].astype(float)
            share = float((col >= min_wt).mean())
            hi_w = window.max.get(el, window.unlisted_max)
            lo_q, hi_q = (float(np.quantile(col, q)) for q in quantiles)
            lo, hi = max(window.min.get(el, 0.0), lo_q, 0.0), hi_q
            hi = min(hi, hi_w) if hi_w is not None else hi
            if el in bounds:
                lo, hi = bounds[el]
            elif share < min_share and el not in allow:
                # too few cards hold it for any model to know its effect: kept at the cards' typical value
                self.unsupported[el] = share
                lo = hi = float(np.round(np.median(col), 2))
            out.append(Var(el, "element", float(lo), float(max(hi, lo))))
        return out

    def _category_vars(self, fixed: dict, min_share: float) -> list:
        out = []
        for c in self.data.categoricals:
            counts = self.table[c].astype(str).value_counts(normalize=True)
            levels = sorted(counts.index[counts >= min_share]) or [counts.index[0]]  # supported levels
            if c in fixed:
                if str(fixed[c]) not in counts.index:
                    raise ValueError(f"design: {c}={fixed[c]!r} is not among the data's {sorted(counts.index)}")
                levels = [str(fixed[c])]
            out.append(Var(c, "category", 0, len(levels) - 1, levels))
        return out

    def _process_vars(self, fixed: dict, strat_cats: list) -> list:
        """Anneal types (or step counts), process numbers, and each schedule step's temperature and time."""
        out = []
        for name in self.schema.schedules:
            tcol = f"{name}_type"
            if tcol in self.schema.categorical:
                levels = [str(fixed[tcol])] if tcol in fixed else sorted(self.table[tcol].astype(str).unique())
                out.append(Var(tcol, "category", 0, len(levels) - 1, levels))
            else:
                counts = self.table[f"{name}_n"]
                out.append(Var(f"{name}_n", "count", float(counts.min()), float(counts.max())))
        out += [
            Var(col, "unit", 0.0, 1.0, stratum=strat_cats) for col in self.schema.numeric if col not in self.outcomes
        ]
        for name, n in self.schema.schedules.items():
            out += [
                Var(col, "unit", 0.0, 1.0, stratum=self.schema.strata.get(col, []))
                for i in range(1, n + 1)
                for col in (f"{name}_T{i}", f"{name}_lt{i}")
                if col in self.table
            ]
        return out

    def _outcome_model(self) -> dict:
        """Per outcome column: the recipe-space points of the cards that recorded it, and their values."""
        out = {}
        if self.outcomes:
            inputs = [
                c
                for c in self.schema.elements + self.schema.numeric + self.schema.step_columns
                if c not in self.outcomes
            ]
            self._outcome_space = cards_mod.RecipeSpace(self.table, self.schema, inputs)
            for col in self.outcomes:
                known = self.table[col].notna().to_numpy()
                if known.sum() >= 1:
                    out[col] = (self._outcome_space(self.table[known]), self.table.loc[known, col].to_numpy(float))
        return out

    def _unit_range(self, v: Var, bounds: dict) -> tuple:
        """(global range, {stratum key: range}) of a unit variable: the cards' own, per stratum where the
        variable has one (e.g. per casting route), inside design.bounds."""
        col = self.table[v.name].astype(float)
        glob = (float(col.min()), float(col.max())) if col.notna().any() else (np.nan, np.nan)
        glob = tuple(bounds.get(v.name, glob))
        by = {}
        for key, part in self.table.groupby([self.table[s].astype(str) for s in v.stratum]) if v.stratum else []:
            vals = part[v.name].astype(float)
            if vals.notna().any():
                key = key if isinstance(key, tuple) else (key,)
                lo, hi = float(vals.min()), float(vals.max())
                by[key] = (max(lo, glob[0]), min(hi, glob[1])) if v.name in bounds else (lo, hi)
        return glob, by

    @property
    def xl(self):
        return np.array([v.lo for v in self.vars], float)

    @property
    def xu(self):
        return np.array([v.hi for v in self.vars], float)

    def recipes(self, X: np.ndarray) -> pd.DataFrame:
        """Decision vectors -> recipe table (vectorised: numpy arrays, one DataFrame at the end)."""
        X = np.atleast_2d(X)
        n_rows = len(X)
        out = {}
        for i, v in enumerate(self.vars):
            x = X[:, i]
            if v.kind == "element":
                out[v.name] = np.round(x, 2)  # castable: 0.01 wt%
            elif v.kind == "category":
                out[v.name] = np.asarray(v.levels, dtype=object)[np.clip(np.round(x), 0, len(v.levels) - 1).astype(int)]
            elif v.kind == "count":
                out[v.name] = np.round(x).astype(int)
        for name in self.schema.schedules:  # a recryst type implies its step count
            tcol = f"{name}_type"
            if tcol in out:
                if name not in self._typical_n:
                    self._typical_n[name] = (
                        self.table.groupby(tcol)[f"{name}_n"].agg(lambda s: int(s.mode().iloc[0])).to_dict()
                    )
                typical = self._typical_n[name]
                out[f"{name}_n"] = np.array([typical.get(t, 0) for t in out[tcol]], dtype=int)
        strata = {}  # stratum columns -> (unique keys, row -> key): many variables share one stratum
        for i, v in enumerate(self.vars):
            if v.kind != "unit":
                continue
            (glo, ghi), by = self._ranges[v.name]
            lo, hi = np.full(n_rows, glo), np.full(n_rows, ghi)
            if v.stratum and by and all(s_ in out for s_ in v.stratum):
                if tuple(v.stratum) not in strata:
                    keys = np.array(
                        ["\x1f".join(map(str, k)) for k in zip(*[out[s_] for s_ in v.stratum])], dtype=object
                    )
                    strata[tuple(v.stratum)] = np.unique(keys, return_inverse=True)
                uniq, inv = strata[tuple(v.stratum)]
                table = {"\x1f".join(k): r for k, r in by.items()}
                for j, k in enumerate(uniq):
                    if k in table:
                        lo[inv == j], hi[inv == j] = table[k]
            value = lo + X[:, i] * (hi - lo)
            if v.name in self.schema.numeric:
                value = np.round(value, 1)
            elif v.name.startswith(tuple(f"{s_}_T" for s_ in self.schema.schedules)):
                value = 5.0 * np.round(value / 5.0)  # 5 °C steps
            else:  # log10 time: 3 significant figures
                mag = 10.0 ** (np.floor(np.where(np.isfinite(value), value, 0.0)) - 2)
                value = np.log10(np.round(10.0**value / mag) * mag)
            out[v.name] = value
        for name, n in self.schema.schedules.items():  # steps beyond the count are absent
            for k in range(1, n + 1):
                absent = out[f"{name}_n"] < k
                for col in (f"{name}_T{k}", f"{name}_lt{k}"):
                    if col in out:
                        out[col] = np.where(absent, np.nan, out[col])
        return self.fill_outcomes(pd.DataFrame(out))

    def encode(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Recipe table (the space's own `table`, or cards encoded the same way) -> decision vectors, the inverse
        of `recipes` up to its rounding, and which rows the space can hold (a categorical level it does not
        have cannot be). Values outside a variable's range are clipped to it; a step a recipe lacks is 0.5."""
        n = len(table)
        X, ok = np.zeros((n, len(self.vars))), np.ones(n, bool)
        for i, v in enumerate(self.vars):
            if v.kind in ("element", "count"):
                X[:, i] = table[v.name].to_numpy(float)
            elif v.kind == "category":
                idx = table[v.name].astype(str).map({lv: j for j, lv in enumerate(v.levels)})
                ok &= idx.notna().to_numpy()
                X[:, i] = idx.fillna(0).to_numpy(float)
            else:
                (glo, ghi), by = self._ranges[v.name]
                lo, hi = np.full(n, glo), np.full(n, ghi)
                if v.stratum and by:
                    for r, key in enumerate(zip(*[table[s_].astype(str) for s_ in v.stratum])):
                        if key in by:
                            lo[r], hi[r] = by[key]
                span = np.where(hi > lo, hi - lo, 1.0)
                X[:, i] = np.where(hi > lo, (table[v.name].to_numpy(float) - lo) / span, 0.5)
        X = np.where(np.isfinite(X), X, 0.5)
        return np.clip(X, self.xl, self.xu), ok

    def fill_outcomes(self, table: pd.DataFrame) -> pd.DataFrame:
        """Each outcome column set to the distance-weighted mean of the 5 most similar tested recipes."""
        Z = self._outcome_space(table) if self._outcome else None
        for col in self.outcomes:
            if col not in self._outcome:  # never recorded: NaN, the featuriser fills it as for such a card
                table[col] = np.nan
                continue
            P, values = self._outcome[col]
            d, j = knn(Z, P, min(5, len(P)))
            w = 1.0 / np.maximum(d, 1e-9)  # inverse distance; an identical tested recipe decides alone
            table[col] = np.round((w * values[j]).sum(axis=1) / w.sum(axis=1), 1)
        return table

    def cards(self, X: np.ndarray, cleaning, strings: bool = True, frame: bool = True) -> pd.DataFrame | dict:
        """Cleaned cards of the recipes; frame=False: a dict of column arrays (the search loop: a DataFrame and
        its column reads cost more than the models)."""
        recipes = self.recipes(X)
        for t in self.schema.targets:
            recipes[t] = np.nan
        out, _ = cards_mod.decode(recipes, self.schema, self.data, cleaning, strings=strings, frame=frame)
        return out


def family_cards(master: pd.DataFrame, family: str | None, families: dict) -> pd.DataFrame:
    """The cards of an alloy family (design.families[family]: element min / max in wt%), or all cards."""
    if not family:
        return master
    if family not in families:
        raise ConfigError(f"design.family={family!r} is not one of design.families {sorted(families)}")
    keep = np.ones(len(master), bool)
    for bound, cmp in (("min", np.greater_equal), ("max", np.less_equal)):
        for el, v in (families[family].get(bound) or {}).items():
            if el in master:
                keep &= cmp(master[el].astype(float).fillna(0.0).to_numpy(), float(v))
            elif bound == "min" and float(v) > 0:
                keep &= False
    if keep.sum() < 5:
        raise ConfigError(
            f"design.family={family}: only {int(keep.sum())} of {len(master)} cards lie in its window "
            f"{dict(families[family])}; too few to design from"
        )
    log.info("design.family=%s: %d of %d cards", family, int(keep.sum()), len(master))
    return master.loc[keep].reset_index(drop=True)


def check_prices(space: Space, weights: dict) -> None:
    """Every element a recipe can contain (a design variable, or kept at a typical value above 0) needs a price."""
    missing = [v.name for v in space.vars if v.kind == "element" and v.hi > 0 and v.name not in weights]
    if missing:
        raise ConfigError(
            f"design.cost_weights has no price for {missing} (price relative to Al), which the "
            f"design may add; set e.g. design.cost_weights.{missing[0]}=<ratio>, or keep it out with "
            f"design.bounds.{missing[0]}=[0,0]"
        )


class RoundDiscrete(Repair):
    """Keeps category / count variables integral (NSGA-II's SBX and mutation work on reals)."""

    def __init__(self, idx):
        super().__init__()
        self.idx = idx

    def _do(self, problem, X, **kwargs):
        X[:, self.idx] = np.round(X[:, self.idx])
        return X


def cost_index(cards: pd.DataFrame, weights: dict, balance: str = "Al") -> np.ndarray:
    """Raw-material cost relative to pure Al: Σ wt%/100 · price ratio (weights; check_prices makes sure every
    element a recipe can hold has one)."""
    elements = [c for c in cards if c in weights or c == balance]  # a frame or a dict of arrays
    return sum(np.asarray(cards[e], float) / 100.0 * float(weights.get(e, 1.0)) for e in elements)


def n_additions(cards: pd.DataFrame, elements, threshold: float = 0.1) -> np.ndarray:
    return (np.column_stack([np.asarray(cards[e], float) for e in elements]) > threshold).sum(axis=1)


@dataclass
class Evaluation:
    cards: pd.DataFrame | dict  # a dict of arrays from the search loop
    pred: dict
    std: dict
    in_domain: np.ndarray
    domain_ratio: np.ndarray
    cost: np.ndarray
    additions: np.ndarray
    F: np.ndarray
    G: np.ndarray


class Evaluator:
    """Scores candidate recipes with the JSON models: objectives F and constraints G (g <= 0 feasible)."""

    def __init__(self, space: Space, models: dict, design, cleaning, targets: dict | None = None):
        """design: a DesignConfig (tolerances, limits, weights); targets: {property: value} (default: the
        design config's non-null targets)."""
        self.space = space
        self.models = models
        self.design = design
        self.cleaning = cleaning
        self.targets = dict(targets) if targets else {t: float(v) for t, v in design.targets.items() if v is not None}
        self.tol = {t: float(design.tolerance.get(t, 1.0)) for t in self.targets}
        self.n_objectives = len(self.targets) + 2  # distance per target, cost, additions
        self.constraints = self._constraint_names()
        self.R: np.ndarray | None = None  # the targets' error correlation for p_hit (rank estimates it on the cards)

    def _constraint_names(self) -> list[str]:
        """The constraints g <= 0 this design has, in the order of the G columns."""
        d, names = self.design, []
        # physical orderings of the properties: yield before tensile strength, uniform before fracture elongation
        names += [f"{a}<={b}" for a, b in ORDERED if a in self.models and b in self.models]
        names += [f"min:{t}" for t, v in (d.min or {}).items() if t in self.models and v is not None]
        adequacy = {
            f"adequate_{n}" for n, spec in self.space.data.schedules.items() if spec.kind in ("homog", "recryst")
        }
        names += [
            c
            for c, on in (("adequate_homog", d.adequate_homog), ("adequate_recryst", d.adequate_recryst))
            if on and c in adequacy
        ]
        names += [n for n, v in (("max_additions", d.max_additions), ("max_cost", d.max_cost)) if v is not None]
        return names + (["domain"] if d.domain == "exclude" else [])

    def _constraint(self, name: str, pred: dict, cards, cost, adds, ratio) -> np.ndarray:
        d = self.design
        if "<=" in name:
            a, b = name.split("<=")
            return pred[a] - pred[b]
        if name.startswith("min:"):
            return float(d.min[name[4:]]) - pred[name[4:]]
        if name == "adequate_homog":
            return 0.5 - np.asarray(cards["adequate_homog"], float)
        if name == "adequate_recryst":  # an anneal that is meant to recrystallise must do so
            annealed = np.isin(np.asarray(cards["recryst_type"]), ["batch", "flash", "direct"])
            return np.where(annealed, 0.5 - np.asarray(cards["adequate_recryst"], float), -1.0)
        if name == "max_additions":
            return adds - float(d.max_additions)
        if name == "max_cost":
            return cost - float(d.max_cost)
        return ratio - 1.0  # domain: exclude

    def __call__(self, X: np.ndarray, with_std: bool = False) -> Evaluation:
        o = self.design
        # the report: a frame with schedule strings; the search loop: a dict of arrays
        cards = self.space.cards(X, self.cleaning, strings=with_std, frame=with_std)
        pred, std, ratios = {}, {}, []
        for t, m in self.models.items():  # a Model or a Committee of them
            if with_std:  # the report: uncertainty and the whole domain (incl. agreement with the reference)
                pred[t], std[t], ratio = m.report(cards)
            else:  # the search loop: formula and distance only
                pred[t], ratio = m.search(cards)
            ratios.append(ratio)
        ratio = np.max(np.vstack(ratios), axis=0)
        cost = cost_index(cards, o.cost_weights, self.space.schema.balance)
        adds = n_additions(cards, self.space.schema.elements)
        F = [np.abs(pred[t] - v) / self.tol[t] for t, v in self.targets.items()]
        F += [cost, adds.astype(float)]
        G = [self._constraint(name, pred, cards, cost, adds, ratio) for name in self.constraints]
        F = np.column_stack(F)
        if o.domain == "penalise":
            F[:, : len(self.targets)] += np.maximum(ratio - 1.0, 0.0)[:, None] * 10.0
        G = np.column_stack(G) if G else np.zeros((len(X), 0))
        return Evaluation(cards, pred, std, ratio <= 1.0, ratio, cost, adds, F, G)


class DesignProblem(Problem):
    """Vectorised pymoo problem: the whole population is decoded, featurised and predicted at once. Every
    evaluated candidate is kept (archive_X) for the ranking, with whether it met the constraints (and the
    search's domain rule), so the ranking need not evaluate the archive again."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        sp = evaluator.space
        super().__init__(
            n_var=len(sp.vars),
            n_obj=evaluator.n_objectives,
            n_ieq_constr=len(evaluator.constraints),
            xl=sp.xl,
            xu=sp.xu,
        )
        self.archive_X, self.archive_feasible, self.archive_broken = [], [], []

    def _evaluate(self, X, out, *args, **kwargs):
        ev = self.evaluator(X)
        out["F"] = ev.F
        if ev.G.shape[1]:
            out["G"] = ev.G
        self.archive_X.append(np.array(X))
        self.archive_feasible.append(feasible(self.evaluator, ev))
        self.archive_broken.append(ev.G > 0)  # which constraint each candidate breaks (why_infeasible)


class _Search:
    """An optimizer config's object (conf/optimizer, `_target_`): minimise(evaluator) returns every candidate
    evaluated (decision vectors); pop_size x n_gen evaluations whatever the method."""

    def __init__(self, name="", pop_size=OptimizerConfig.pop_size, n_gen=OptimizerConfig.n_gen, seed=0):
        self.name = name
        self.pop_size = pop_size
        self.n_gen = n_gen
        self.seed = seed

    def minimise(self, evaluator: Evaluator, progress=None) -> np.ndarray:
        """progress: None = a progress bar on the terminal; else called as progress(generations done, total)
        (a service or a web page shows its own, and a terminal bar allows one search at a time)."""
        problem = DesignProblem(evaluator)
        if progress is not None:
            done = iter(range(1, self.n_gen + 1))
            self._search(problem, lambda: progress(next(done), self.n_gen))
        else:
            from rich.progress import Progress

            from .report import LogTicker

            label = f"design: {self.name} {self.pop_size} x {self.n_gen}"
            ticker = LogTicker(f"{label}, generation", self.n_gen)
            with Progress(transient=True) as bar:
                task = bar.add_task(label, total=self.n_gen)

                def tick():
                    bar.advance(task)
                    ticker.update(advance=1)

                self._search(problem, tick)
        self.feasible_ = np.concatenate(problem.archive_feasible)  # per returned candidate (rank(ok=...))
        self.broken_ = np.concatenate(problem.archive_broken)  # candidates x evaluator.constraints
        return np.vstack(problem.archive_X)


class NSGA2Search(_Search):
    """pymoo NSGA-II (SBX crossover, polynomial mutation, integer repair of categorical levels)."""

    def _search(self, problem: DesignProblem, tick) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.callback import Callback
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.optimize import minimize

        class Tick(Callback):
            def notify(self, algorithm):
                tick()

        alg = NSGA2(
            pop_size=self.pop_size,
            crossover=SBX(eta=15, prob=0.9),
            mutation=PM(eta=20),
            repair=RoundDiscrete(problem.evaluator.space.discrete),
            eliminate_duplicates=False,
        )
        minimize(problem, alg, ("n_gen", self.n_gen), seed=self.seed, callback=Tick(), verbose=False)


class RandomSearch(_Search):
    """Uniform random recipes with NSGA-II's budget: the baseline NSGA-II must beat."""

    def _search(self, problem: DesignProblem, tick) -> None:
        rng = np.random.default_rng(self.seed)
        discrete = problem.evaluator.space.discrete
        for _ in range(self.n_gen):
            X = problem.xl + rng.random((self.pop_size, problem.n_var)) * (problem.xu - problem.xl)
            X[:, discrete] = np.round(X[:, discrete])
            problem.evaluate(X)
            tick()


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


def feasible(evaluator: Evaluator, ev: Evaluation) -> np.ndarray:
    """Candidates that meet every constraint (and are in domain, under design.domain=exclude)."""
    ok = (ev.G <= 0).all(axis=1) if ev.G.shape[1] else np.ones(len(ev.F), bool)
    return ok & ev.in_domain if evaluator.design.domain == "exclude" else ok


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
    # nearest real card in the recipe space
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
    out["nearest_card"] = label.to_numpy()
    out["nearest_distance"] = np.round(d[:, 0], 3)
    out["note"] = _notes(out, c, targets)
    # one recipe per neighbourhood, as a metallurgist would tell recipes apart: composition to 0.1 wt%,
    # reductions to 5 %, the categoricals and schedule types, the final anneal's peak temperature to 10 °C (so
    # recipes that differ only in ingot thickness, hold minutes or grain size are one recommendation)
    key = out[space.schema.elements].round(1).astype(str).agg("|".join, axis=1)
    for col in space.schema.numeric:
        if space.data.numeric[col].kind == "percent":
            key += "|" + (out[col] / 5).round().astype(str)
    for col in [c for c in out.columns if c.endswith("_type") or c in space.data.categoricals]:
        key += "|" + out[col].astype(str)
    for name in space.schema.schedules:
        if space.data.schedules[name].kind == "recryst" and f"{name}_temp_max_C" in c:
            key += "|" + (c[f"{name}_temp_max_C"].to_numpy() / 10).round().astype(str)
    # p_hit is the first key (to 0.01: cost, simplicity and depth in the domain break near-ties), as the README
    # says; in-domain recipes before the others unless design.domain=ignore
    order = ["in_domain", "_p", "score"] if evaluator.design.domain != "ignore" else ["_p", "score"]
    asc = [False, False, True] if evaluator.design.domain != "ignore" else [False, True]
    out = out.assign(_key=key.to_numpy(), _p=out["p_hit"].round(2)).sort_values(order, ascending=asc, kind="stable")
    out = out.loc[~out["_key"].duplicated()].drop(columns=["_key", "_p"]).reset_index(drop=True)  # the best of each
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


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
