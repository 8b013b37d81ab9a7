"""A trained property model as it lives in model.json: featuriser + chosen JSON model + ensemble members +
residual sd + applicability domain (distance to the training cards, and agreement with a reference model).
Loading never executes code from the file: it is JSON, validated node by node, and evaluated with numpy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import expr
from .config import TrainConfig
from .expr import ModelFileError
from .features import Featuriser

FORMAT = "alloy_hydra.model/1"


def _columns(X, names) -> dict:
    A = np.array(X, dtype=float)  # a writable copy (pandas 3 gives read-only views)
    return {n: A[:, i] for i, n in enumerate(names)}


def predict_json(model: dict, X, names=None) -> np.ndarray:
    """Evaluate a JSON model (expression or trees) on a feature matrix whose columns are model['features']."""
    names = names or model["features"]
    cols = _columns(X, names)
    n = len(next(iter(cols.values()))) if cols else len(X)
    if model["kind"] == "expression":
        return np.broadcast_to(expr.evaluate(model["expr"], cols), (n,)).astype(float).copy()
    if model["kind"] == "trees":
        A = np.array(X, dtype=float)
        out = np.full(n, float(model["baseline"]))
        flat, base = A.ravel(), np.arange(n) * A.shape[1] if A.ndim == 2 else np.zeros(n, int)
        has_nan = bool(np.isnan(A).any())
        for t in model["trees"]:
            # a leaf points to itself (threshold +inf, both children itself), so every card takes depth + 1
            # steps without a per-step "still active" test and ends on the same leaf as a step-by-step walk
            leaf = np.asarray(t["leaf"], bool)
            own = np.arange(len(leaf))
            feat = np.where(leaf, 0, np.asarray(t["feature"], int))
            thr = np.where(leaf, np.inf, np.asarray(t["threshold"], float))
            left = np.where(leaf, own, np.asarray(t["left"], int))
            right = np.where(leaf, own, np.asarray(t["right"], int))
            miss = np.asarray(t["missing_left"], bool)
            node = np.zeros(n, dtype=int)
            for _ in range(int(t["depth"]) + 1):
                x = flat[base + feat[node]]
                go_left = x <= thr[node]
                if has_nan:
                    go_left = np.where(np.isnan(x), miss[node] | leaf[node], go_left)
                node = np.where(go_left, left[node], right[node])
            out += np.asarray(t["value"], float)[node]
        return out
    raise expr.ModelFileError(f"unknown model kind {model.get('kind')!r}")


def validate_model(model: dict) -> None:
    """Reject a model.json member that is not a plain expression or tree ensemble over its own features."""
    if not isinstance(model, dict) or model.get("kind") not in ("expression", "trees"):
        raise expr.ModelFileError("model kind must be 'expression' or 'trees'")
    feats = model.get("features")
    if not isinstance(feats, list) or not all(isinstance(f, str) for f in feats):
        raise expr.ModelFileError("model features must be a list of names")
    if model["kind"] == "expression":
        if set(model) - {"kind", "expr", "features"}:
            raise expr.ModelFileError(f"unexpected keys {sorted(set(model) - {'kind', 'expr', 'features'})}")
        expr.validate(model["expr"], set(feats))
        return
    allowed = {"kind", "baseline", "trees", "features"}
    if set(model) - allowed or not isinstance(model.get("trees"), list):
        raise expr.ModelFileError("tree model must hold baseline, trees, features only")
    for t in model["trees"]:
        keys = {"feature", "threshold", "left", "right", "leaf", "value", "missing_left", "depth"}
        if set(t) != keys:
            raise expr.ModelFileError("malformed tree")
        arrays = [np.asarray(t[k], float) for k in keys - {"depth"}]
        if len({len(a) for a in arrays}) != 1 or not all(np.isfinite(a).all() for a in arrays):
            raise expr.ModelFileError("malformed tree arrays")
        n = len(t["leaf"])
        idx = np.asarray(t["feature"] + t["left"] + t["right"], float)
        if (
            (idx < 0).any()
            or np.asarray(t["feature"]).max(initial=0) >= len(feats)
            or max(max(t["left"], default=0), max(t["right"], default=0)) >= n
        ):
            raise expr.ModelFileError("tree indices out of range")


def _distance_blocks(Z: np.ndarray, P: np.ndarray, chunk: int = 4096):
    """(start, dense Euclidean distances) per chunk of Z against P: P is a few hundred reference cards, so a
    dense block is cheaper than a tree and needs no thread pool (the design loop calls this thousands of times)."""
    p2 = np.einsum("ij,ij->i", P, P)
    for s in range(0, len(Z), chunk):
        z = Z[s : s + chunk]
        d2 = np.einsum("ij,ij->i", z, z)[:, None] + p2[None, :] - 2.0 * z @ P.T
        yield s, np.sqrt(np.maximum(d2, 0.0))


def knn(Z: np.ndarray, P: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of the k nearest rows of P to each row of Z (unordered within the k)."""
    dist, idx = np.empty((len(Z), k)), np.empty((len(Z), k), dtype=int)
    for s, d in _distance_blocks(Z, P):
        near = np.argpartition(d, k - 1, axis=1)[:, :k]
        dist[s : s + len(d)], idx[s : s + len(d)] = np.take_along_axis(d, near, axis=1), near
    return dist, idx


def knn_mean_distance(Z: np.ndarray, P: np.ndarray, k: int, skip_self: bool = False) -> np.ndarray:
    """Mean Euclidean distance from each row of Z to its k nearest rows of P (skip_self: Z is P, leave the
    row itself out)."""
    out = np.empty(len(Z))
    kk = k + 1 if skip_self else k
    for s, d in _distance_blocks(Z, P):
        near = np.sort(np.partition(d, kk - 1, axis=1)[:, :kk], axis=1)
        out[s : s + len(d)] = (near[:, 1:] if skip_self else near).mean(axis=1)
    return out


@dataclass
class Domain:
    """Applicability domain of a model, from its real training cards. A card is inside (ratio <= 1) when all of:
    - its mean distance to the k nearest training cards in standardised space over **every** model input is
      within `threshold` (a quantile of the training cards' own leave-one-out distances): a recipe new in any
      input — including one a formula uses only inside an interaction, or not at all — is an extrapolation;
    - the same over the formula's own inputs (`use`, threshold `threshold_use`): a new combination of the few
      inputs a formula uses (high Mg with a partial anneal) is diluted in a distance over ~30 columns;
    - every input lies within the training cards' range widened by `range_tol` x its width on each side; an input
      the training cards never vary (an element no card contains, a category level no card has) must stay at the
      training value: an addition no tested card has is out of domain, however close the rest of the card is.
    `points` cover the columns `cols` (None = all; model files older than this rule stored the formula's
    columns only)."""

    mu: np.ndarray
    sd: np.ndarray
    points: np.ndarray
    k: int
    threshold: float
    use: np.ndarray | None = None  # the formula's inputs (feature indices); None = no second distance
    threshold_use: float | None = None
    lo: np.ndarray | None = None  # per feature: training range (None: no range rule)
    hi: np.ndarray | None = None
    range_tol: float = 0.1
    cols: np.ndarray | None = None

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        k: int = TrainConfig.domain_k,
        quantile: float = TrainConfig.domain_quantile,
        use=None,
        range_tol: float = TrainConfig.domain_range_tol,
    ) -> Domain:
        X = np.asarray(X, float)
        mu, sd = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        Z = np.nan_to_num((X - mu) / sd)
        k = max(1, min(k, len(Z) - 1))
        threshold = max(float(np.quantile(knn_mean_distance(Z, Z, k, skip_self=True), quantile)), 1e-9)
        use = None if use is None or not len(use) else np.asarray(sorted(use), int)
        t_use = None
        if use is not None:
            t_use = max(float(np.quantile(knn_mean_distance(Z[:, use], Z[:, use], k, skip_self=True), quantile)), 1e-9)
        return cls(mu, sd, Z, k, threshold, use, t_use, np.nanmin(X, axis=0), np.nanmax(X, axis=0), range_tol)

    def standardise(self, X: np.ndarray) -> np.ndarray:
        """Cards in the standardised space the distances are measured in (its own columns)."""
        X = np.asarray(X, float)
        X = X if self.cols is None else X[:, self.cols]
        return np.nan_to_num((X - self.mu) / self.sd)

    def distance(self, X: np.ndarray) -> np.ndarray:
        """Mean distance to the k nearest training cards over every input (standardised units)."""
        return knn_mean_distance(self.standardise(X), self.points, self.k)

    def range_ratio(self, X: np.ndarray) -> np.ndarray:
        """Per card, the largest excess beyond a feature's widened training range (<= 1 inside; inf for a change
        in a feature the training cards never vary)."""
        if self.lo is None:
            return np.zeros(len(X))
        X = np.asarray(X, float)
        width = self.hi - self.lo
        excess = np.nan_to_num(np.maximum(np.maximum(self.lo - X, X - self.hi), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(
                width > 0,
                excess / (self.range_tol * np.where(width > 0, width, 1.0)),
                np.where(excess > 1e-9 * (1 + np.abs(self.hi)), np.inf, 0.0),
            )
        return r.max(axis=1) if r.shape[1] else np.zeros(len(X))

    def ratio(self, X: np.ndarray, dist: np.ndarray | None = None) -> np.ndarray:
        """How far out of the domain each card sits (<= 1 inside): the largest of the three rules' ratios."""
        Z = self.standardise(X)
        dist = knn_mean_distance(Z, self.points, self.k) if dist is None else dist
        r = np.maximum(dist / self.threshold, self.range_ratio(X))
        if self.use is not None and self.threshold_use is not None and self.cols is None:
            r = np.maximum(r, knn_mean_distance(Z[:, self.use], self.points[:, self.use], self.k) / self.threshold_use)
        return r

    def to_json(self) -> dict:
        arr = lambda a: None if a is None else np.asarray(a).tolist()
        return {
            "mu": self.mu.tolist(),
            "sd": self.sd.tolist(),
            "points": np.round(self.points, 6).tolist(),
            "k": self.k,
            "threshold": self.threshold,
            "use": arr(self.use),
            "threshold_use": self.threshold_use,
            "lo": arr(self.lo),
            "hi": arr(self.hi),
            "range_tol": self.range_tol,
            "cols": arr(self.cols),
        }

    @classmethod
    def from_json(cls, d: dict, n_features: int) -> Domain:
        idx = lambda key: None if d.get(key) is None else np.asarray(d[key], int)
        use, cols = idx("use"), idx("cols")
        mu = np.asarray(d["mu"], float)
        if "lo" not in d and use is not None:  # an older model file: its points cover the formula's columns
            use, cols = None, use
        for ix in (use, cols):
            if ix is not None and ((ix < 0) | (ix >= n_features)).any():
                raise ModelFileError("domain columns do not match the featuriser's columns")
        if len(mu) != (n_features if cols is None else len(cols)):
            raise ModelFileError("domain columns do not match the featuriser's columns")
        lo = None if d.get("lo") is None else np.asarray(d["lo"], float)
        hi = None if d.get("hi") is None else np.asarray(d["hi"], float)
        if lo is not None and (len(lo) != n_features or hi is None or len(hi) != n_features):
            raise ModelFileError("domain ranges do not match the featuriser's columns")
        t_use = d.get("threshold_use")
        return cls(
            mu,
            np.asarray(d["sd"], float),
            np.asarray(d["points"], float),
            int(d["k"]),
            float(d["threshold"]),
            use,
            None if t_use is None else float(t_use),
            lo,
            hi,
            float(d.get("range_tol", 0.1)),
            cols,
        )


@dataclass
class Model:
    target: str
    unit: str
    featuriser: Featuriser
    main: dict
    members: list
    sigma_resid: float
    domain: Domain
    info: dict
    reference: dict | None = None  # a model of another family (gbm) trained on the same rows
    agreement: float = 0.0  # out of domain where |model - reference| > agreement x sigma_resid (0 = off)
    # sigma = max(sigma_of(...), ensemble spread), its coefficients fitted to the out-of-fold errors of the real
    # training cards (train.fit_sigma); None: sigma² = spread² + sigma_resid²
    sigma_model: dict | None = None

    def domain_ratio(self, X: np.ndarray, mean=None, dist=None, ref=None):
        """Per card, how far out of the applicability domain it sits (<= 1 inside): the larger of the domain's
        ratio (Domain.ratio: distance and range) and, with a reference model, the formula's disagreement with it
        over agreement x sigma_resid — a recipe where two model families disagree is an extrapolation even when
        it sits near tested cards."""
        ratio = self.domain.ratio(X, dist)
        if self.reference is not None and self.agreement > 0:
            mean = predict_json(self.main, X) if mean is None else mean
            ref = predict_json(self.reference, X) if ref is None else ref
            gap = np.abs(mean - ref) / (self.agreement * max(self.sigma_resid, 1e-12))
            ratio = np.maximum(ratio, np.where(np.isfinite(gap), gap, np.inf))
        return ratio

    @property
    def features(self) -> list[str]:
        return self.featuriser.columns_

    def X(self, cards: pd.DataFrame) -> np.ndarray:
        return self.featuriser.transform_array(cards)

    def mean_std(self, X: np.ndarray, dist=None, ref=None) -> tuple[np.ndarray, np.ndarray]:
        """Prediction and its sigma for a feature matrix (sigma_model, or member spread + residual scatter);
        dist, ref: the domain distance and the reference model's prediction when already known."""
        mean = predict_json(self.main, X)
        if self.members:
            spread = np.std(np.vstack([predict_json(m, X) for m in self.members]), axis=0)
        else:
            spread = np.zeros(len(mean))
        if not self.sigma_model:
            return mean, np.sqrt(spread**2 + self.sigma_resid**2)
        sm = self.sigma_model
        if sm["b_gap"] and self.reference is not None:
            gap = mean - (predict_json(self.reference, X) if ref is None else ref)
        else:
            gap = 0.0
        dist = self.domain.distance(X) if dist is None and sm["b_dist"] else dist
        sigma = sigma_of(sm, len(mean), gap, dist / self.domain.threshold if sm["b_dist"] else 0.0, mean)
        # the sigma model was fitted to out-of-fold errors, which already hold the model's own variance: the
        # members' spread adds nothing where it is within sigma, and bounds sigma from below where it is not
        sigma = np.maximum(sigma, spread)
        return mean, np.where(np.isfinite(sigma), sigma, np.inf)

    def _unseen(self, cards, ratio: np.ndarray) -> np.ndarray:
        """ratio, infinite where a card changes an input no training card varied (Featuriser.unseen)."""
        return ratio if cards is None else np.where(self.featuriser.unseen(cards), np.inf, ratio)

    def search(self, cards: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, domain ratio without the reference) for the design loop: a tree ensemble per evaluation
        would cost seconds, so the members and the reference wait for the report."""
        X = self.X(cards)
        return predict_json(self.main, X), self._unseen(cards, self.domain.ratio(X))

    def report(self, cards: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prediction, sigma, whole domain ratio incl. agreement with the reference) for ranked candidates."""
        X = self.X(cards)
        dist, ref = self.domain.distance(X), self._reference(X)
        mean, std = self.mean_std(X, dist, ref)
        return mean, std, self._unseen(cards, self.domain_ratio(X, mean, dist, ref))

    def predict(self, cards: pd.DataFrame | None = None, X: np.ndarray | None = None):
        """(mean, std, in_domain, distance) for cleaned cards (or a ready feature matrix: then an input the
        training cards never varied cannot be checked)."""
        _, dist, _, mean, std, inside = self._scored(cards, X)
        return mean, std, inside, dist

    def _scored(self, cards, X=None):
        """(X, distance, reference, mean, std, in_domain): one featurisation, one distance, one reference
        evaluation, shared by predict and predict_explained."""
        X = self.X(cards) if X is None else X
        dist, ref = self.domain.distance(X), self._reference(X)
        mean, std = self.mean_std(X, dist, ref)
        return X, dist, ref, mean, std, self._unseen(cards, self.domain_ratio(X, mean, dist, ref)) <= 1.0

    def predict_explained(self, cards: pd.DataFrame):
        """(mean, std, in_domain, distance, reasons): predict() and, for the cards out of domain only, why
        (domain_reasons), from the same featurisation, distance and reference evaluation."""
        X, dist, ref, mean, std, inside = self._scored(cards)
        reasons = np.full(len(X), "", dtype=object)
        out = np.flatnonzero(~inside)
        if len(out):
            part = (X[out], dist[out], None if ref is None else ref[out], mean[out])
            reasons[out] = self.domain_reasons(cards.iloc[out], part)
        return mean, std, inside, dist, list(reasons)

    def domain_reasons(self, cards: pd.DataFrame, part=None) -> list[str]:
        """Per cleaned card, why it is out of the applicability domain in words ("" when inside): each rule of
        domain_ratio that fails — an input no training card varied, an input beyond its widened training range,
        far from the tested cards, the formula and its reference disagreeing. part: (X, distance, reference,
        prediction) of these cards when already known."""
        if part is None:
            X = self.X(cards)
            part = (X, self.domain.distance(X), self._reference(X), predict_json(self.main, X))
        X, dist, ref, mean = part
        d = self.domain
        names = np.asarray(self.features if d.cols is None else [self.features[i] for i in d.cols])
        Xd = X if d.cols is None else X[:, d.cols]
        unseen = self.featuriser.unseen(cards)
        fixed = [c for c in self.featuriser.numeric if c not in self.features and c in cards]
        use = None
        if d.use is not None and d.threshold_use is not None and d.cols is None:
            Z = d.standardise(X)
            use = knn_mean_distance(Z[:, d.use], d.points[:, d.use], d.k)
        out = []
        for i in range(len(X)):
            why = []
            if unseen[i]:
                changed = [
                    c for c in fixed if abs(float(np.nan_to_num(cards[c].iat[i])) - self.featuriser.fill_[c]) > 1e-9
                ]
                why.append(f"changes {', '.join(changed) or 'an input'}, which no training card varied")
            if d.lo is not None and len(names):
                width = np.where(d.hi - d.lo > 0, d.hi - d.lo, np.inf)
                excess = np.maximum(np.maximum(d.lo - Xd[i], Xd[i] - d.hi), 0.0) / (d.range_tol * width)
                for j in np.flatnonzero(excess > 1):
                    why.append(f"{names[j]} = {Xd[i, j]:.4g} beyond the training range {d.lo[j]:.4g}–{d.hi[j]:.4g}")
            if dist[i] > d.threshold:
                why.append(f"far from the tested cards (distance {dist[i]:.2f} > {d.threshold:.2f})")
            elif use is not None and use[i] > d.threshold_use:
                why.append(
                    f"far from the tested cards in the formula's own inputs ({use[i]:.2f} > {d.threshold_use:.2f})"
                )
            if self.reference is not None and self.agreement > 0:
                gap = abs(mean[i] - ref[i])
                if not gap <= self.agreement * self.sigma_resid:
                    why.append(
                        f"the formula and its reference model disagree by {gap:.3g} {self.unit} "
                        f"(> {self.agreement * self.sigma_resid:.3g})"
                    )
            out.append("; ".join(why))
        return out

    def _reference(self, X: np.ndarray):
        """The reference model's prediction (sigma and domain both read it: a tree ensemble is evaluated once)."""
        return None if self.reference is None else predict_json(self.reference, X)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "target": self.target,
            "unit": self.unit,
            "featuriser": self.featuriser.to_json(),
            "model": self.main,
            "members": self.members,
            "sigma_resid": self.sigma_resid,
            "domain": self.domain.to_json(),
            "info": self.info,
            "reference": self.reference,
            "agreement": self.agreement,
            "sigma_model": self.sigma_model,
        }

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path) -> Model:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ModelFileError(f"{path}: not a readable model file ({err})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not an alloy_hydra model file")
        try:
            feat = Featuriser.from_json(d["featuriser"])
            reference = d.get("reference")
            for m in [d["model"], *d["members"], *([reference] if reference is not None else [])]:
                validate_model(m)
                if m["features"] != feat.columns_:
                    raise ModelFileError("model features differ from the featuriser's columns")
            domain = Domain.from_json(d["domain"], len(feat.columns_))
            return cls(
                str(d["target"]),
                str(d["unit"]),
                feat,
                d["model"],
                d["members"],
                float(d["sigma_resid"]),
                domain,
                d.get("info", {}),
                reference,
                float(d.get("agreement", 0.0)),
                _sigma_model(d.get("sigma_model")),
            )
        except ModelFileError as err:
            raise ModelFileError(f"{path}: {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path}: malformed model file ({err!r})") from None


SIGMA_TERMS = ("b0", "b_gap", "b_dist", "b_level")


def sigma_terms(n: int, gap=0.0, dratio=0.0, level=0.0) -> np.ndarray:
    """The sigma model's inputs per card: 1, |model - reference|, distance ratio, |prediction| (scatter grows with
    the strength level: a 500 MPa alloy is not measured to the 5 MPa of a 100 MPa one)."""
    cols = [np.ones(n)] + [
        np.broadcast_to(np.abs(np.nan_to_num(np.asarray(v, float))), (n,)) for v in (gap, dratio, level)
    ]
    return np.column_stack(cols)


def sigma_of(sm: dict, n: int, gap=0.0, dratio=0.0, level=0.0) -> np.ndarray:
    """sigma = b0 + b_gap·|gap| + b_dist·distance ratio + b_level·|prediction| (Model.mean_std: at least the spread)."""
    return sigma_terms(n, gap, dratio, level) @ np.array([sm.get(k, 0.0) for k in SIGMA_TERMS])


def _sigma_model(sm) -> dict | None:
    if sm is None:
        return None
    if (
        not isinstance(sm, dict)
        or "b0" not in sm
        or set(sm) - set(SIGMA_TERMS)
        or not all(isinstance(v, (int, float)) and v >= 0 for v in sm.values())
    ):
        raise ModelFileError(f"sigma_model must hold non-negative numbers {', '.join(SIGMA_TERMS)}")
    return {k: float(sm.get(k, 0.0)) for k in SIGMA_TERMS}


def _committee_sigma(P: np.ndarray, sigmas: list) -> np.ndarray:
    """A committee's sigma from its members' predictions P (member x card) and sigmas: each member's sigma was
    fitted to its own out-of-fold errors, so their RMS is what one member errs, and the mean of several errs no
    more (less, as far as their errors are independent; not claimed). Where the members disagree by more than
    that, their disagreement is the floor. Not added on top: it is part of what each sigma already measured."""
    return np.sqrt(np.maximum(np.mean(np.square(sigmas), axis=0), P.var(axis=0)))


@dataclass
class Committee:
    """Several models of one target (the seeds of a sweep, each trained on its own split) used as one: the mean
    of their predictions; sigma from their own sigmas and their spread; in domain only where every member is.
    Why: one symbolic fit is one draw of a structure; where the designer extrapolates, single formulas err in
    different directions, and their mean errs less (measured on the demo ground truth, see README)."""

    models: list

    @property
    def target(self) -> str:
        return self.models[0].target

    @property
    def unit(self) -> str:
        return self.models[0].unit

    def search(self, cards: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        out = [m.search(cards) for m in self.models]
        return np.mean([p for p, _ in out], axis=0), np.max([r for _, r in out], axis=0)

    def predict(self, cards: pd.DataFrame):
        """(mean, std, in_domain, distance) as Model.predict: in domain where every member is, the largest
        member distance."""
        return self._combine([m.predict(cards) for m in self.models])

    @staticmethod
    def _combine(out: list):
        """The members' (mean, std, in_domain, distance) as the committee's."""
        P = np.array([o[0] for o in out])
        std = _committee_sigma(P, [o[1] for o in out])
        in_dom = np.all([o[2] for o in out], axis=0)
        return P.mean(axis=0), std, in_dom, np.max([o[3] for o in out], axis=0)

    def domain_reasons(self, cards: pd.DataFrame) -> list[str]:
        """Per card, the reasons of every member that finds it out of domain (Model.domain_reasons)."""
        return self._union([m.domain_reasons(cards) for m in self.models])

    @staticmethod
    def _union(per: list) -> list[str]:
        return ["; ".join(dict.fromkeys(r for m in row for r in m.split("; ") if r)) for row in zip(*per)]

    def predict_explained(self, cards: pd.DataFrame):
        """predict() with the members' reasons for the cards out of domain (Model.predict_explained)."""
        out = [m.predict_explained(cards) for m in self.models]
        return (*self._combine(out), self._union([o[4] for o in out]))

    def report(self, cards: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = [m.report(cards) for m in self.models]
        P = np.array([p for p, _, _ in out])
        std = _committee_sigma(P, [s for _, s, _ in out])
        return P.mean(axis=0), std, np.max([r for _, _, r in out], axis=0)
