"""Regressors, all scikit-learn estimators (clone / cross_validate work) that export a safe JSON model.

- OperonRegressor (default): pyoperon symbolic regression; multi-objective (accuracy × length) Pareto front.
- PySRAdaptor: maps the action plan's PySR settings onto PySRRegressor; raises JuliaNotAvailable before
  importing pysr where Julia is missing.
- RidgeModel, GBMModel: the baselines. Ridge exports a linear formula; gradient boosting exports its trees.

Every estimator predicts through its JSON model (`to_json`), so model.json reproduces the fitted predictions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import expr, physics
from .config import GBMConfig, HingeConfig, OperonConfig, PySRConfig, RidgeConfig, TrainConfig
from .errors import AlloyHydraError
from .model import predict_json

# list-valued defaults, read once (the schema in alloy_hydra.config is where every default lives)
_HINGE, _PYSR, _RIDGE = HingeConfig(), PySRConfig(), RidgeConfig()


class JuliaNotAvailable(AlloyHydraError, RuntimeError):
    """PySR needs a Julia installation, and none is present: the user's setup, so one line, never a traceback
    (run.py reports an AlloyHydraError as such; a sweep marks the job failed and goes on)."""


def _names(X, feature_names):
    if feature_names is not None:
        return list(feature_names)
    if hasattr(X, "columns"):
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(np.asarray(X).shape[1])]


class _JSONPredictor(RegressorMixin, BaseEstimator):
    """Shared by the regressors: input checks (sklearn's validate_data: feature count and names, no NaN / inf,
    no empty data) and prediction through the fitted JSON model. Defaults come from the config schema
    (alloy_hydra.config), so an estimator built in code is the estimator `regressor=<name>` builds."""

    allow_nan = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.allow_nan
        return tags

    def _fit_data(self, X, y):
        """(feature names, X, y) as float arrays, after sklearn's checks; sets n_features_in_ (and
        feature_names_in_ for a DataFrame)."""
        A, yy = validate_data(
            self, X, y, ensure_all_finite="allow-nan" if self.allow_nan else True, y_numeric=True, dtype=float
        )
        names = _names(X, getattr(self, "feature_names", None))
        return names, np.array(A, dtype=float), np.array(yy, dtype=float)

    def predict(self, X):
        check_is_fitted(self, "json_")
        A = validate_data(self, X, reset=False, ensure_all_finite="allow-nan" if self.allow_nan else True, dtype=float)
        return predict_json(self.json_, A)

    def to_json(self) -> dict:
        return self.json_


class FixedModel(_JSONPredictor):
    """An already-fitted JSON model as an estimator (for sklearn tools such as permutation_importance). Without
    a model it is the null model: fit learns the mean of y."""

    allow_nan = True  # a tree model routes NaN; an expression propagates it

    def __init__(self, model=None):
        self.model = model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = self.model is None  # the null model predicts the mean
        return tags

    def fit(self, X, y):
        if self.model is None:
            names, A, yy = self._fit_data(X, y)
            self.json_ = {
                "kind": "expression",
                "expr": {"const": float(np.mean(yy))},
                "features": [f"x{i}" for i in range(A.shape[1])],
            }
            return self
        A = validate_data(self, X, ensure_all_finite=False, dtype=float)
        if A.shape[1] != len(self.model["features"]):
            raise ValueError(f"X has {A.shape[1]} features, the model uses {len(self.model['features'])}")
        self.json_ = self.model
        return self


class OperonRegressor(_JSONPredictor):
    """pyoperon SymbolicRegressor with an accuracy × length Pareto front; the chosen expression is operon's
    own pick until the train stage re-chooses from the front by grouped CV, complexity and physics."""

    def __init__(
        self,
        name="operon",
        generations=OperonConfig.generations,
        population_size=OperonConfig.population_size,
        max_length=OperonConfig.max_length,
        max_depth=OperonConfig.max_depth,
        allowed_symbols=OperonConfig.allowed_symbols,
        optimizer_iterations=OperonConfig.optimizer_iterations,
        max_time=OperonConfig.max_time,
        max_evaluations=OperonConfig.max_evaluations,
        n_threads=OperonConfig.n_threads,
        hinge_terms=OperonConfig.hinge_terms,
        physics=None,
        physics_min_fraction=TrainConfig.physics_min_fraction,
        feature_names=None,
        random_state=0,
    ):
        self.name = name
        self.generations = generations
        self.population_size = population_size
        self.max_length = max_length
        self.max_depth = max_depth
        self.allowed_symbols = allowed_symbols
        self.optimizer_iterations = optimizer_iterations
        self.max_time = max_time
        self.max_evaluations = max_evaluations
        self.n_threads = n_threads
        self.hinge_terms = hinge_terms
        self.physics = physics
        self.physics_min_fraction = physics_min_fraction
        self.feature_names = feature_names
        self.random_state = random_state

    def fit(self, X, y):
        from pyoperon.sklearn import SymbolicRegressor

        names, A, yy = self._fit_data(X, y)
        alias = {f"x{i}": n for i, n in enumerate(names)}
        if int(self.optimizer_iterations) <= 0:
            raise ValueError("operon needs optimizer_iterations > 0: constant fitting is off otherwise")
        reg = SymbolicRegressor(
            allowed_symbols=self.allowed_symbols,
            objectives=["r2", "length"],
            generations=int(self.generations),
            population_size=int(self.population_size),
            pool_size=int(self.population_size),
            max_length=int(self.max_length),
            max_depth=int(self.max_depth),
            optimizer_iterations=int(self.optimizer_iterations),
            max_time=int(self.max_time) if self.max_time else None,
            max_evaluations=int(self.max_evaluations) if self.max_evaluations else 2**62,
            n_threads=int(self.n_threads),
            random_state=int(self.random_state),
        )
        reg.fit(A, yy)
        # the work bound is generations (and max_evaluations if set); stopping short of both means the
        # wall-clock cap fired and this formula depends on the machine's load
        gens = int(reg.stats_.get("generations", self.generations))
        self.time_capped_ = bool(self.max_time) and gens < int(self.generations) and not self.max_evaluations
        front = []
        for p in reg.pareto_front_:
            tree = expr.simplify(expr.parse(reg.get_model_string(p["tree"], 15, names=list(alias)), alias))
            front.append(
                {"expr": tree, "length": expr.length(tree), "mse": float(p["mean_squared_error"]), "source": "operon"}
            )
        own = expr.simplify(expr.parse(reg.get_model_string(reg.model_, 15, names=list(alias)), alias))
        self.operon_json_ = {"kind": "expression", "expr": own, "features": names}  # operon's own pick
        if int(self.hinge_terms) > 0:  # the sparse hinge-basis path joins the front (see HingeRegressor)
            front += (
                HingeRegressor(
                    max_terms=self.hinge_terms,
                    physics=self.physics,
                    physics_min_fraction=self.physics_min_fraction,
                    feature_names=names,
                )
                .fit(A, yy)
                .front_
            )
        front.sort(key=lambda f: f["length"])
        self.front_ = front
        self.json_ = {"kind": "expression", "expr": front[_lowest_bic(front, len(yy))]["expr"], "features": names}
        self.operon_predict_ = np.asarray(reg.predict(A), dtype=float)  # float32 inside operon
        return self


def _lowest_bic(front: list, n: int) -> int:
    """Index of the front member with the lowest BIC, n·log(MSE) + (number of constants)·log(n)."""
    return int(
        np.argmin([n * np.log(max(f["mse"], 1e-300)) + len(expr.constants(f["expr"])) * np.log(n) for f in front])
    )


class HingeRegressor(_JSONPredictor):
    """Sparse hinge-basis symbolic regression (FFX / MARS style, deterministic): every input x, and for inputs
    with more than a few distinct values the hinges max(x - k, 0) and caps min(x, k) at training quantiles k,
    enter a sparse selection (`paths`: orthogonal matching pursuit, forward stepwise least squares and/or the
    lasso path (LARS) with every active set refitted by least squares, i.e. the relaxed lasso). Step j of a path
    is the formula c0 + w1·b1 + ... + wj·bj; the paths are the Pareto front (accuracy vs size), and the model is
    the step with the lowest BIC. Caps and hinges give saturating, piecewise-linear element and process effects,
    which extrapolate to an unseen alloy more safely than a polynomial.

    physics: optional list of {"base", "nudged", "sign"} feature matrices (the audit's finite differences, see
    physics.constraints); a basis function joins only if the refitted formula still moves with the expected sign
    on at least `physics_min_fraction` of the points, so every step of the path passes the audit by design."""

    def __init__(
        self,
        name="hinge",
        max_terms=HingeConfig.max_terms,
        knots=tuple(_HINGE.knots),
        min_distinct=HingeConfig.min_distinct,
        paths=tuple(_HINGE.paths),
        physics=None,
        physics_min_fraction=TrainConfig.physics_min_fraction,
        tries=HingeConfig.tries,
        feature_names=None,
        random_state=0,
    ):
        self.name = name
        self.max_terms = max_terms
        self.knots = knots
        self.min_distinct = min_distinct
        self.paths = paths
        self.physics = physics
        self.physics_min_fraction = physics_min_fraction
        self.tries = tries
        self.feature_names = feature_names
        self.random_state = random_state

    def _basis(self, A, names):
        """(matrix, trees): one column and one expression tree per basis function."""
        cols, trees = [], []
        for i, n in enumerate(names):
            x, var = A[:, i], {"var": n}
            cols.append(x)
            trees.append(var)
            u = np.unique(x[np.isfinite(x)])
            if len(u) < int(self.min_distinct):
                continue
            for k in sorted({float(q) for q in np.quantile(x, list(self.knots))}):
                if u[0] < k < u[-1]:
                    cols += [np.maximum(x - k, 0.0), np.minimum(x, k)]
                    trees += [
                        {"op": "max", "args": [{"op": "sub", "args": [var, {"const": k}]}, {"const": 0.0}]},
                        {"op": "min", "args": [var, {"const": k}]},
                    ]
        return np.column_stack(cols), trees

    def _physics_deltas(self, trees, names):
        """Per constraint: (sign, change of every basis function between the base and the nudged points)."""
        out = []
        for c in self.physics or []:
            base, nudged = (dict(zip(names, np.asarray(c[k], float).T)) for k in ("base", "nudged"))
            n = len(next(iter(base.values())))
            delta = np.column_stack(
                [np.broadcast_to(expr.evaluate(t, nudged) - expr.evaluate(t, base), (n,)) for t in trees]
            )
            out.append((float(c["sign"]), delta, bool(c.get("everywhere", True))))
        return out

    def _passes(self, deltas, active, w) -> bool:
        return all(physics.sign_fraction(d[:, active] @ w, sign) >= self.physics_min_fraction for sign, d, _ in deltas)

    def _lstsq(self, Z, r, cols):
        """Least squares on the active columns, each weight kept to the sign the physics gives its basis function
        (self.signs_: a term that only rises with Mg gets a weight >= 0, ...) by bounded least squares."""
        s = self.signs_[cols] if getattr(self, "signs_", None) is not None else np.zeros(len(cols))
        return physics.signed_lstsq(Z[:, cols], r, s)

    def _path(self, rule, Z, r0, deltas, sd):
        """Active sets and standardised weights, one per step. omp scores a column by its correlation with the
        residual; ols (forward stepwise) by the residual drop it would give, i.e. after orthogonalising it
        against the active columns. The two greedy rules pick different paths; grouped CV chooses later. lars:
        the relaxed lasso path (_lars_path)."""
        if rule == "lars":
            return self._lars_path(Z, r0, deltas, sd)
        resid, active, steps = r0, [], []
        Zp = Z.copy() if rule == "ols" else None
        tiny = 1e-8 * len(r0)
        for _ in range(max(1, min(int(self.max_terms), Z.shape[1], len(r0) - 2))):
            if rule == "ols":
                norm = np.einsum("ij,ij->j", Zp, Zp)
                score = np.where(norm > tiny, (Zp.T @ resid) ** 2 / np.maximum(norm, tiny), -1.0)
            else:  # a column the active set spans scores 0
                score = (Z.T @ resid) ** 2 / len(r0)
            score[active] = -1.0
            step = None
            for j in np.argsort(-score)[: int(self.tries)]:
                if score[j] <= 1e-12 * np.dot(resid, resid):
                    break
                cols = active + [int(j)]
                coef = self._lstsq(Z, r0, cols)
                if abs(coef[-1]) <= 1e-12:  # its physics sign holds it at zero: it adds nothing
                    continue
                if self._passes(deltas, cols, coef / sd[cols]):
                    step = (int(j), cols, coef)
                    break
            if step is None:  # nothing that keeps the physics (or nothing left) can join
                break
            j, active, coef = step
            if rule == "ols":
                q = Zp[:, j] / np.linalg.norm(Zp[:, j])
                Zp -= np.outer(q, q @ Zp)
            resid = r0 - Z[:, active] @ coef
            steps.append((active, coef))
        return steps

    def _lars_path(self, Z, r0, deltas, sd):
        """Active sets of the lasso path (LARS) up to max_terms, each refitted by least squares (relaxed lasso).
        Unlike the greedy rules, the lasso lets a basis leave the active set again as others join, so its sets
        are less tied to the first few choices; on unseen uq_al alloys its UTS formulas of 22-34 terms reach
        R² 0.87-0.88 where the greedy paths stop at 0.86 (README). Sets whose refit breaks the audited physics are
        skipped."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import lars_path

        with warnings.catch_warnings():  # past max_terms the path may stop early: those sets are not used
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, _, coefs = lars_path(Z, r0, method="lasso", max_iter=2 * int(self.max_terms) + 10)
        steps, seen = [], set()
        for j in range(1, coefs.shape[1]):
            active = [int(k) for k in np.flatnonzero(coefs[:, j])]
            if len(active) > int(self.max_terms):
                break
            if not active or tuple(active) in seen:
                continue
            seen.add(tuple(active))
            coef = self._lstsq(Z, r0, active)
            keep = np.abs(coef) > 1e-12  # a term its physics sign holds at zero leaves the set
            active, coef = [a for a, k in zip(active, keep) if k], coef[keep]
            if not active or (tuple(active) in seen and not keep.all()):
                continue
            seen.add(tuple(active))
            if self._passes(deltas, active, coef / sd[active]):
                steps.append((active, coef))
        return steps

    def fit(self, X, y):
        if set(self.paths) - {"omp", "ols", "lars"} or not len(self.paths):
            raise ValueError(f"hinge paths must be a non-empty list of omp / ols / lars, got {list(self.paths)}")
        names, A, yy = self._fit_data(X, y)
        B, trees = self._basis(A, names)
        mu, sd = B.mean(axis=0), B.std(axis=0)
        live = sd > 1e-12 * (1 + np.abs(mu))
        B, trees, mu, sd = B[:, live], [t for t, ok in zip(trees, live) if ok], mu[live], sd[live]
        deltas = self._physics_deltas(trees, names)
        moves = [d for _, d, _ in deltas]
        self.signs_ = physics.weight_signs([{"sign": sg, "everywhere": every} for sg, _, every in deltas], moves)
        rising = physics.weight_signs([{"sign": sg} for sg, _, _ in deltas], moves)
        if rising is not None:  # where physics says the property keeps rising (or falling), nothing saturates: a
            # cap min(x, k) of such an input would stop the formula at the k-th quantile of the training cards (on
            # the cards a `where` check selects too, although only the checks that hold everywhere fix a weight)
            keep = ~((rising != 0) & np.array([t.get("op") == "min" for t in trees]))
            B, trees, mu, sd = B[:, keep], [t for t, k in zip(trees, keep) if k], mu[keep], sd[keep]
            self.signs_ = self.signs_[keep] if self.signs_ is not None else None
            deltas = [(sign, d[:, keep], everywhere) for sign, d, everywhere in deltas]
        Z, ym = (B - mu) / sd, yy.mean()
        front = [
            {"expr": {"const": float(ym)}, "length": 1, "mse": float(np.var(yy)), "linear": True, "source": "hinge"}
        ]
        for rule in self.paths:  # a member keeps its path's name: nested CV compares a path with itself per fold
            for active, coef in self._path(rule, Z, yy - ym, deltas, sd):
                w = coef / sd[active]
                tree = expr.weighted_sum(ym - np.dot(w, mu[active]), w, [trees[k] for k in active])
                mse = float(np.mean((yy - ym - Z[:, active] @ coef) ** 2))
                signs = [int(v) for v in self.signs_[active]] if self.signs_ is not None else [0] * len(active)
                front.append(
                    {
                        "expr": tree,
                        "length": expr.length(tree),
                        "mse": mse,
                        "linear": True,
                        "signs": signs,  # per term: the sign physics holds its weight to (0 = free); refits keep it
                        "source": f"hinge-{rule}",
                    }
                )
        front.sort(key=lambda f: f["length"])
        self.front_ = front
        self.json_ = {"kind": "expression", "expr": front[_lowest_bic(front, len(yy))]["expr"], "features": names}
        return self


class PySRAdaptor(_JSONPredictor):
    """The action plan's PySR configuration (Step 3.2) on PySRRegressor. Julia is checked before pysr is
    imported: `import pysr` would try to download Julia, which fails on machines without network."""

    def __init__(
        self,
        name="pysr",
        niterations=PySRConfig.niterations,
        populations=PySRConfig.populations,
        population_size=PySRConfig.population_size,
        parsimony=PySRConfig.parsimony,
        binary_operators=tuple(_PYSR.binary_operators),
        unary_operators=tuple(_PYSR.unary_operators),
        constraints=_PYSR.constraints,
        loss=PySRConfig.loss,
        procs=PySRConfig.procs,
        multithreading=PySRConfig.multithreading,
        max_time=PySRConfig.max_time,
        feature_names=None,
        random_state=0,
    ):
        self.name = name
        self.niterations = niterations
        self.populations = populations
        self.population_size = population_size
        self.parsimony = parsimony
        self.binary_operators = binary_operators
        self.unary_operators = unary_operators
        self.constraints = constraints
        self.loss = loss
        self.procs = procs
        self.multithreading = multithreading
        self.max_time = max_time
        self.feature_names = feature_names
        self.random_state = random_state

    def pysr_kwargs(self) -> dict:
        """PySRRegressor keyword arguments for this config (checked by a test without Julia)."""
        constraints = {
            k: (tuple(v) if isinstance(v, (list, tuple)) else int(v)) for k, v in (self.constraints or {}).items()
        }
        kw = dict(
            niterations=int(self.niterations),
            populations=int(self.populations),
            population_size=int(self.population_size),
            parsimony=float(self.parsimony),
            binary_operators=list(self.binary_operators),
            unary_operators=list(self.unary_operators),
            constraints=constraints,
            elementwise_loss=self.loss,
            procs=int(self.procs),
            parallelism="multithreading" if self.multithreading else "serial",
            random_state=int(self.random_state),
            deterministic=not self.multithreading,
            model_selection="best",
        )
        if self.max_time:
            kw["timeout_in_seconds"] = float(self.max_time)
        return kw

    @staticmethod
    def julia_available() -> str | None:
        exe = os.environ.get("PYTHON_JULIACALL_EXE")
        if exe and Path(exe).exists():
            return exe
        found = shutil.which("julia")
        if found:
            return found
        depot = Path(os.environ.get("JULIA_DEPOT_PATH", Path.home() / ".julia")).expanduser()
        for cand in sorted(depot.glob("juliaup/*/bin/julia")) + sorted(
            (depot / "environments").glob("pyjuliapkg/install/bin/julia")
        ):
            if cand.exists():
                return str(cand)
        return None

    def fit(self, X, y):
        if self.julia_available() is None:
            raise JuliaNotAvailable(
                "regressor=pysr needs Julia, and none was found (PYTHON_JULIACALL_EXE, `julia` on PATH, "
                "~/.julia/juliaup). This machine cannot download it; use regressor=operon (the default "
                "symbolic engine) or install Julia and `pip install pysr`."
            )
        from pysr import PySRRegressor

        names, X, y = self._fit_data(X, y)
        alias = {f"x{i}": n for i, n in enumerate(names)}
        reg = PySRRegressor(**self.pysr_kwargs(), variable_names=list(alias))
        reg.fit(np.array(X, dtype=float), np.array(y, dtype=float))
        eqs = reg.equations_
        self.front_ = [
            {"expr": expr.simplify(expr.parse(str(e).replace("**", "^"), alias)), "length": int(c), "mse": float(loss)}
            for e, c, loss in zip(eqs["sympy_format"], eqs["complexity"], eqs["loss"])
        ]
        self.json_ = {
            "kind": "expression",
            "expr": expr.simplify(expr.parse(str(reg.sympy()), alias)),
            "features": names,
        }
        return self


class RidgeModel(_JSONPredictor):
    """Standardised ridge (alpha by internal CV), exported as a linear formula in the original units."""

    def __init__(self, name="ridge", alphas=tuple(_RIDGE.alphas), feature_names=None, random_state=0):
        self.name = name
        self.alphas = alphas
        self.feature_names = feature_names
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.linear_model import RidgeCV

        names, A, y = self._fit_data(X, y)
        mu, sd = A.mean(axis=0), A.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        m = RidgeCV(alphas=list(self.alphas)).fit((A - mu) / sd, np.asarray(y, float))
        w = m.coef_ / sd
        terms = [{"const": float(m.intercept_ - np.dot(w, mu))}]
        terms += [{"op": "mul", "args": [{"const": float(wi)}, {"var": n}]} for wi, n in zip(w, names) if wi != 0]
        tree = terms[0]
        for t in terms[1:]:
            tree = {"op": "add", "args": [tree, t]}
        self.json_ = {"kind": "expression", "expr": tree, "features": names}
        self.front_ = [{"expr": tree, "length": expr.length(tree), "mse": float("nan")}]
        return self


class GBMModel(_JSONPredictor):
    """HistGradientBoosting baseline, exported as its trees (numbers only). It routes missing values (NaN) as
    sklearn does: each split stores the side they go to."""

    allow_nan = True

    def __init__(
        self,
        name="gbm",
        max_iter=GBMConfig.max_iter,
        learning_rate=GBMConfig.learning_rate,
        max_leaf_nodes=GBMConfig.max_leaf_nodes,
        monotonic_cst=None,
        feature_names=None,
        random_state=0,
    ):
        self.name = name
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        # per input column -1 / 0 / +1 (physics.weight_signs): the trees only fall / rise along it
        self.monotonic_cst = monotonic_cst
        self.feature_names = feature_names
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.ensemble import HistGradientBoostingRegressor

        names, A, y = self._fit_data(X, y)
        m = HistGradientBoostingRegressor(
            max_iter=int(self.max_iter),
            learning_rate=float(self.learning_rate),
            max_leaf_nodes=int(self.max_leaf_nodes),
            monotonic_cst=None if self.monotonic_cst is None else [int(v) for v in self.monotonic_cst],
            random_state=int(self.random_state),
        )
        m.fit(A, y)
        self.n_iter_ = int(m.n_iter_)
        trees = []
        for (pred,) in m._predictors:
            nd = pred.nodes
            trees.append(
                {
                    "feature": nd["feature_idx"].tolist(),
                    "threshold": nd["num_threshold"].tolist(),
                    "left": nd["left"].tolist(),
                    "right": nd["right"].tolist(),
                    "leaf": nd["is_leaf"].astype(int).tolist(),
                    "value": nd["value"].tolist(),
                    "missing_left": nd["missing_go_to_left"].astype(int).tolist(),
                    "depth": int(nd["depth"].max()),
                }
            )
        self.json_ = {
            "kind": "trees",
            "baseline": float(np.ravel(m._baseline_prediction)[0]),
            "trees": trees,
            "features": names,
        }
        self.front_ = []
        self.sk_predict_ = m.predict(np.array(X, dtype=float))
        return self
