"""The search: candidates scored by the models (Evaluator), the pymoo Problem, and the algorithms (NSGA-II,
random search) on the same budget."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymoo.core.callback import Callback
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair

from ..config import OptimizerConfig
from .space import ORDERED, Space, cost_index, n_additions  # noqa: F401

log = logging.getLogger(__name__)


class RoundDiscrete(Repair):
    """Keeps category / count variables integral (NSGA-II's SBX and mutation work on reals)."""

    def __init__(self, idx):
        super().__init__()
        self.idx = idx

    def _do(self, problem, X, **kwargs):
        X[:, self.idx] = np.round(X[:, self.idx])
        return X


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
    """Vectorised pymoo problem: the whole population is decoded, featurised and predicted at once."""

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

    def _evaluate(self, X, out, *args, **kwargs):
        ev = self.evaluator(X)
        out["F"] = ev.F
        if ev.G.shape[1]:
            out["G"] = ev.G


class Archive(Callback):
    """Every candidate a search evaluated, in the order evaluated, with the constraints each breaks (g > 0).
    pymoo calls `notify` after each generation with the algorithm, whose `off` holds the individuals it has just
    evaluated (the initial population first); pymoo's Result keeps only the last population, and the ranking
    wants every candidate. A candidate is feasible when it meets every one (design.domain=exclude is one of them)."""

    def __init__(self, tick=None):
        super().__init__()
        self.tick = tick
        self._X, self._G = [], []

    def add(self, X: np.ndarray, G) -> None:
        X = np.array(X)
        self._X.append(X)
        self._G.append(np.zeros((len(X), 0)) if G is None or np.size(G) == 0 else np.asarray(G, float))
        if self.tick:
            self.tick()

    def notify(self, algorithm):
        self.add(algorithm.off.get("X"), algorithm.off.get("G"))

    @property
    def X(self) -> np.ndarray:
        return np.vstack(self._X)

    @property
    def broken(self) -> np.ndarray:
        """candidates x evaluator.constraints: which constraint each candidate breaks (why_infeasible)"""
        return np.vstack(self._G) > 0

    @property
    def feasible(self) -> np.ndarray:
        return (np.vstack(self._G) <= 0).all(axis=1)  # a constraint that could not be computed (NaN) is not met


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
            archive = Archive(lambda: progress(next(done), self.n_gen))
            self._search(problem, archive)
        else:
            from rich.progress import Progress

            from ..report import LogTicker

            label = f"design: {self.name} {self.pop_size} x {self.n_gen}"
            ticker = LogTicker(f"{label}, generation", self.n_gen)
            with Progress(transient=True) as bar:
                task = bar.add_task(label, total=self.n_gen)

                def tick():
                    bar.advance(task)
                    ticker.update(advance=1)

                archive = Archive(tick)
                self._search(problem, archive)
        self.feasible_ = archive.feasible  # per returned candidate (rank(ok=...))
        self.broken_ = archive.broken  # candidates x evaluator.constraints
        return archive.X


class NSGA2Search(_Search):
    """pymoo NSGA-II (SBX crossover, polynomial mutation, integer repair of categorical levels)."""

    def _search(self, problem: DesignProblem, archive: Archive) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.optimize import minimize

        alg = NSGA2(
            pop_size=self.pop_size,
            crossover=SBX(eta=15, prob=0.9),
            mutation=PM(eta=20),
            repair=RoundDiscrete(problem.evaluator.space.discrete),
            eliminate_duplicates=False,
        )
        minimize(problem, alg, ("n_gen", self.n_gen), seed=self.seed, callback=archive, verbose=False)


class RandomSearch(_Search):
    """Uniform random recipes with NSGA-II's budget: the baseline NSGA-II must beat."""

    def _search(self, problem: DesignProblem, archive: Archive) -> None:
        rng = np.random.default_rng(self.seed)
        discrete = problem.evaluator.space.discrete
        for _ in range(self.n_gen):
            X = problem.xl + rng.random((self.pop_size, problem.n_var)) * (problem.xu - problem.xl)
            X[:, discrete] = np.round(X[:, discrete])
            out = problem.evaluate(X, return_as_dictionary=True)
            archive.add(X, out.get("G"))


def feasible(evaluator: Evaluator, ev: Evaluation) -> np.ndarray:
    """Candidates that meet every constraint (and are in domain, under design.domain=exclude)."""
    ok = (ev.G <= 0).all(axis=1) if ev.G.shape[1] else np.ones(len(ev.F), bool)
    return ok & ev.in_domain if evaluator.design.domain == "exclude" else ok
