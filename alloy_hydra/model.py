"""A trained property model as it lives in model.json: featuriser + chosen JSON model + ensemble members +
residual sd + applicability domain (distance to the training cards, and agreement with a reference model).
Loading never executes code from the file: it is JSON, validated node by node, and evaluated with numpy."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .expr import ModelFileError
from .features import Featuriser
from .regress import predict_json, validate_model

FORMAT = "alloy_hydra.model/1"


def _distance_blocks(Z: np.ndarray, P: np.ndarray, chunk: int = 4096):
    """(start, dense Euclidean distances) per chunk of Z against P: P is a few hundred reference cards, so a
    dense block is cheaper than a tree and needs no thread pool (the design loop calls this thousands of times)."""
    p2 = np.einsum("ij,ij->i", P, P)
    for s in range(0, len(Z), chunk):
        z = Z[s: s + chunk]
        d2 = np.einsum("ij,ij->i", z, z)[:, None] + p2[None, :] - 2.0 * z @ P.T
        yield s, np.sqrt(np.maximum(d2, 0.0))


def knn(Z: np.ndarray, P: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of the k nearest rows of P to each row of Z (unordered within the k)."""
    dist, idx = np.empty((len(Z), k)), np.empty((len(Z), k), dtype=int)
    for s, d in _distance_blocks(Z, P):
        near = np.argpartition(d, k - 1, axis=1)[:, :k]
        dist[s: s + len(d)], idx[s: s + len(d)] = np.take_along_axis(d, near, axis=1), near
    return dist, idx


def knn_mean_distance(Z: np.ndarray, P: np.ndarray, k: int, skip_self: bool = False) -> np.ndarray:
    """Mean Euclidean distance from each row of Z to its k nearest rows of P (skip_self: Z is P, leave the
    row itself out)."""
    out = np.empty(len(Z))
    kk = k + 1 if skip_self else k
    for s, d in _distance_blocks(Z, P):
        near = np.sort(np.partition(d, kk - 1, axis=1)[:, :kk], axis=1)
        out[s: s + len(d)] = (near[:, 1:] if skip_self else near).mean(axis=1)
    return out


@dataclass
class Domain:
    """Applicability domain: mean distance to the k nearest real training rows in standardised feature space,
    measured on the columns `use` (the formula's own inputs; all columns for tree / linear models); beyond
    `threshold` (a quantile of the training rows' own leave-one-out distances) = out of domain.

    Why the formula's inputs: a recipe that differs from the tested cards only in columns the formula ignores
    gets the same prediction as its neighbours, while a new combination of the inputs it does use (high Mg
    with a partial anneal, say) is an extrapolation that a distance over ~30 columns dilutes. Columns the
    formula ignores are still watched by the reference model (Model.agreement), which uses all of them."""
    mu: np.ndarray
    sd: np.ndarray
    points: np.ndarray
    k: int
    threshold: float
    use: np.ndarray | None = None   # feature indices the distance is measured on; None = all

    @classmethod
    def fit(cls, X: np.ndarray, k: int = 5, quantile: float = 0.95, use=None) -> "Domain":
        X = np.asarray(X, float)
        use = np.arange(X.shape[1]) if use is None or not len(use) else np.asarray(sorted(use), int)
        X = X[:, use]
        mu, sd = X.mean(axis=0), X.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        Z = (X - mu) / sd
        k = max(1, min(k, len(Z) - 1))
        d = knn_mean_distance(Z, Z, k, skip_self=True)
        return cls(mu, sd, Z, k, max(float(np.quantile(d, quantile)), 1e-9), use)

    def distance(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, float)
        X = X if self.use is None else X[:, self.use]
        return knn_mean_distance((X - self.mu) / self.sd, self.points, self.k)

    def to_json(self) -> dict:
        return {"mu": self.mu.tolist(), "sd": self.sd.tolist(), "points": np.round(self.points, 6).tolist(),
                "k": self.k, "threshold": self.threshold, "use": None if self.use is None else self.use.tolist()}

    @classmethod
    def from_json(cls, d: dict, n_features: int) -> "Domain":
        use = d.get("use")
        use = None if use is None else np.asarray(use, int)
        mu = np.asarray(d["mu"], float)
        if (use is not None and (len(use) != len(mu) or ((use < 0) | (use >= n_features)).any())) or \
                (use is None and len(mu) != n_features):
            raise ModelFileError("domain columns do not match the featuriser's columns")
        return cls(mu, np.asarray(d["sd"], float), np.asarray(d["points"], float), int(d["k"]),
                   float(d["threshold"]), use)


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
    reference: dict | None = None   # a model of another family (gbm) trained on the same rows
    agreement: float = 0.0          # out of domain where |model - reference| > agreement x sigma_resid (0 = off)

    def domain_ratio(self, X: np.ndarray, mean: np.ndarray | None = None, dist: np.ndarray | None = None):
        """Per card, how far out of the applicability domain it sits (<= 1 inside): the larger of the distance
        to the training cards over its threshold and, with a reference model, the formula's disagreement with
        it over agreement x sigma_resid — a recipe where two model families disagree is an extrapolation even
        when it sits near tested cards."""
        dist = self.domain.distance(X) if dist is None else dist
        ratio = dist / self.domain.threshold
        if self.reference is not None and self.agreement > 0:
            mean = predict_json(self.main, X) if mean is None else mean
            gap = np.abs(mean - predict_json(self.reference, X)) / (self.agreement * max(self.sigma_resid, 1e-12))
            ratio = np.maximum(ratio, np.where(np.isfinite(gap), gap, np.inf))
        return ratio

    @property
    def features(self) -> list[str]:
        return self.featuriser.columns_

    def X(self, cards: pd.DataFrame) -> np.ndarray:
        return self.featuriser.transform_array(cards)

    def mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prediction and its sigma (member spread + residual scatter) for a feature matrix."""
        mean = predict_json(self.main, X)
        if self.members:
            spread = np.std(np.vstack([predict_json(m, X) for m in self.members]), axis=0)
        else:
            spread = np.zeros(len(mean))
        return mean, np.sqrt(spread ** 2 + self.sigma_resid ** 2)

    def search(self, cards: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, domain ratio by distance only) for the design loop: a tree ensemble per evaluation
        would cost seconds, so the members and the reference wait for the report."""
        X = self.X(cards)
        return predict_json(self.main, X), self.domain.distance(X) / self.domain.threshold

    def report(self, cards: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prediction, sigma, whole domain ratio incl. agreement with the reference) for ranked candidates."""
        X = self.X(cards)
        mean, std = self.mean_std(X)
        return mean, std, self.domain_ratio(X, mean)

    def predict(self, cards: pd.DataFrame | None = None, X: np.ndarray | None = None):
        """(mean, std, in_domain, distance) for cleaned cards (or a ready feature matrix)."""
        X = self.X(cards) if X is None else X
        mean, std = self.mean_std(X)
        dist = self.domain.distance(X)
        return mean, std, self.domain_ratio(X, mean, dist) <= 1.0, dist

    def to_json(self) -> dict:
        return {"format": FORMAT, "target": self.target, "unit": self.unit,
                "featuriser": self.featuriser.to_json(), "model": self.main, "members": self.members,
                "sigma_resid": self.sigma_resid, "domain": self.domain.to_json(), "info": self.info,
                "reference": self.reference, "agreement": self.agreement}

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path) -> "Model":
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
            return cls(str(d["target"]), str(d["unit"]), feat, d["model"], d["members"], float(d["sigma_resid"]),
                       domain, d.get("info", {}), reference, float(d.get("agreement", 0.0)))
        except ModelFileError as err:
            raise ModelFileError(f"{path}: {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path}: malformed model file ({err!r})") from None


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

    def report(self, cards: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = [m.report(cards) for m in self.models]
        P = np.array([p for p, _, _ in out])
        std = np.sqrt(np.mean([s ** 2 for _, s, _ in out], axis=0) + P.var(axis=0))
        return P.mean(axis=0), std, np.max([r for _, _, r in out], axis=0)

