"""The design assistant over a model registry: the action plan's question (targets, alloy family, casting, max
cost) -> ranked recipes, and data cards -> predictions. The service and the web page both call this; it calls
the functions run.py uses (stages.design.recommend, clean.clean, Model.predict), so for the same model versions
and inputs the answers are run.py's.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import cards as cards_mod
from . import clean, expr
from . import design as design_mod
from .errors import AlloyHydraError
from .features import split_name
from .registry import Registry, RegistryDamaged, RegistryError, Version, one_dataset
from .schema import ROW_COL

# the action plan's request names -> the properties they mean (elongation = elongation at fracture)
REQUEST_TARGETS = {"target_YS": "YS", "target_UTS": "UTS", "target_EL": "FractureEL"}
# what a request may ask for, per property: (above, at most); the service's fields and the page use these
TARGET_LIMITS = {"YS": (0.0, 1000.0), "UTS": (0.0, 1000.0), "FractureEL": (0.0, 100.0)}
DEFAULT_ALIAS = "champion"


# an absolute path of two or more parts (/srv/lab/models/YS/1), not a unit (MPa/wt%) or an endpoint (/design)
ABSOLUTE_PATH = re.compile(r"(?<![\w.%])(?:[A-Za-z]:)?[/\\](?:[^\s'\"/\\]+[/\\])+[^\s'\",;)/\\]*")


def redact(text: str) -> str:
    """`text` with every absolute path cut to its last part: a client learns no server folder."""
    return ABSOLUTE_PATH.sub(lambda m: re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1] or "<path>", text)


class RequestError(AlloyHydraError):
    """A request the models cannot answer; `field` names the offending input."""

    def __init__(self, field: str, message: str, status: int = 422):
        self.field, self.status = field, status
        super().__init__(f"{field}: {message}")


class ServiceFault(RequestError):
    """The registry behind the answer fails its checks (503): the server's fault, named, never the client's."""

    def __init__(self, field: str, message: str):
        super().__init__(field, message, 503)


@dataclass
class DesignRequest:
    targets: dict[str, float]  # {YS: 260, UTS: 320, FractureEL: 12}
    family: str | None = None  # a key of design.families (AA5xxx)
    casting: str | None = None  # a casting route the cards hold (DC)
    max_cost: float | None = None
    top: int | None = None  # recipes returned (default: design.top)
    minimum: dict[str, float] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)  # other categoricals
    pop_size: int | None = None  # optimiser budget (default: the optimizer config's)
    n_gen: int | None = None
    models: dict[str, str] = field(default_factory=dict)  # {target: version | alias}; default champion


def cards_from_records(records: list[dict]) -> pd.DataFrame:
    """JSON records as raw cards (cells as strings, as read from a CSV; card k is row k + 1, header = row 1)."""
    df = pd.DataFrame(records, dtype=object)
    df = df.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    df.insert(0, ROW_COL, np.arange(2, len(df) + 2))
    return df


def missing_inputs(raw: pd.DataFrame, cfg, model) -> pd.Series:
    """Per raw card, the blank cells the model reads as a stand-in value (text; "" when none): a number column
    the model uses (filled with the training median), or an element most training cards hold (a blank element
    reads as 0 wt%, the cards' convention for "not added", but where the training median is above 0 a blank is
    more likely a value nobody wrote down)."""
    feat = getattr(model, "models", [model])[0].featuriser
    used = set(feat.columns_)
    for formula, tree, _ in feat._trees():
        if split_name(formula)[0] in used:
            used |= expr.variables(tree)
    checks = []
    for el, col in cfg.data.composition_columns.items():
        if el in used and col in raw and feat.fill_.get(el, 0.0) > 0:
            checks.append((col, f"{col} blank: read as 0 wt%, but most training cards hold {el}"))
    for name, spec in cfg.data.numeric.items():
        if name in used and spec.column in raw:
            checks.append((spec.column, f"{spec.column} blank: filled with the training median {feat.fill_[name]:.4g}"))
    blank = [np.array([clean.is_missing(str(v)) for v in raw[col]], bool) for col, _ in checks]  # cleaning's own
    texts = [""] * len(raw)
    for i in np.flatnonzero(np.any(blank, axis=0)) if blank else []:
        texts[i] = "; ".join(text for (_, text), b in zip(checks, blank) if b[i])
    return pd.Series(texts, index=raw.index, dtype=object)


def predict_cards(raw: pd.DataFrame, cfg, model, source="cards", cleaned=None) -> pd.DataFrame:
    """Every raw card with `<t>_pred`, `<t>_std`, `in_domain`, `domain_distance` (cleaned and featurised with the
    model's own data schema and rules) or the cleaning's `rejected_reason`; rows in = rows out. cleaned: the
    cards already through clean_for_prediction with the same config."""
    result = cleaned if cleaned is not None else clean.clean_for_prediction(raw, cfg, source, labels=False)
    t = model.target
    out = raw.copy()
    for col in (f"{t}_pred", f"{t}_std", "domain_distance"):
        out[col] = np.nan
    out["in_domain"] = pd.NA
    out["domain_reason"] = ""
    out["rejected_reason"] = ""
    if len(result.master):
        mean, std, in_dom, dist, reasons = model.predict_explained(result.master)
        reasons = np.asarray(reasons, dtype=object)
        pos = out.index[out[ROW_COL].isin(result.master[ROW_COL])]
        order = pd.Series(range(len(result.master)), index=result.master[ROW_COL].to_numpy())
        idx = order.loc[out.loc[pos, ROW_COL].to_numpy()].to_numpy()
        missing = missing_inputs(raw, cfg, model).loc[pos].to_numpy()
        out.loc[pos, f"{t}_pred"] = mean[idx]
        out.loc[pos, f"{t}_std"] = std[idx]
        # a card with a stand-in input is not in domain: its prediction is for the stand-in, not the card
        out.loc[pos, "in_domain"] = in_dom[idx] & (missing == "")
        out.loc[pos, "domain_distance"] = dist[idx]
        both = [
            "; ".join(x for x in (m, r if not ok else "") if x) for m, r, ok in zip(missing, reasons[idx], in_dom[idx])
        ]
        out.loc[pos, "domain_reason"] = both
    if len(result.rejects):
        reasons = dict(zip(result.rejects[ROW_COL], result.rejects["reason"]))
        out["rejected_reason"] = out[ROW_COL].map(reasons).fillna("")
    return out


class Assistant:
    """Designs and predicts with a registry's versions (each target's `champion`, else its newest, unless a
    request names one). Versions are immutable: each is checked and loaded once."""

    def __init__(self, registry, base_cfg=None):
        from . import config

        self.registry = registry if isinstance(registry, Registry) else Registry(registry)
        self.base = base_cfg if base_cfg is not None else config.compose()  # run.py's defaults
        self._cache: dict[tuple[str, int], Version] = {}
        self._lock = threading.Lock()

    # --- what the registry holds --------------------------------------------------------------------------------
    def ref(self, target: str, requested: str | None = None) -> str | None:
        if requested:
            return str(requested)
        entry = self.registry.index()["targets"].get(target, {})
        return DEFAULT_ALIAS if DEFAULT_ALIAS in entry.get("aliases", {}) else None

    def version(self, target: str, requested: str | None = None) -> Version:
        try:
            number = self.registry.resolve(target, self.ref(target, requested))
            with self._lock:
                if (target, number) not in self._cache:
                    self._cache[(target, number)] = self.registry.load(target, number)
                return self._cache[(target, number)]
        except RegistryDamaged as err:
            raise ServiceFault("registry", self.public(str(err))) from None
        except RegistryError as err:
            raise RequestError(f"models.{target}" if requested else target, self.public(str(err)), 404) from None

    def public(self, value):
        """`value` (a message, or an answer's dicts and lists) without the server's paths, for every front end:
        the registry's folder is "<registry>", any other absolute path is cut to its last part."""
        if isinstance(value, dict):
            return {k: self.public(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.public(v) for v in value]
        if not isinstance(value, str):
            return value
        for root in {str(self.registry.path.resolve()), str(self.registry.path.absolute()), str(self.registry.path)}:
            if root not in (".", ""):
                value = value.replace(root, "<registry>")
        return redact(value)

    def ready(self) -> tuple[bool, str | None, dict]:
        """(ready, why not, {target: ref}): every version a request would use resolves and its files pass their
        checksums now (re-checked on every call, not only when first loaded)."""
        try:
            targets = self.registry.targets()
            if not targets:
                return False, "the registry has no published model", {}
            used = {}
            for t in targets:
                number = self.registry.resolve(t, self.ref(t))
                self.registry.verify(t, number)
                used[t] = self.version(t).ref
        except AlloyHydraError as err:
            return False, self.public(str(err)), {}
        return True, None, used

    def in_use(self, targets=None, models: dict | None = None) -> dict[str, dict]:
        """{target: {version, ref, method, holdout_r2, ...}} of the versions a request would use."""
        out = {}
        for t in targets or self.registry.targets():
            v = self.version(t, (models or {}).get(t))
            out[t] = {
                "version": v.number,
                "ref": v.ref,
                "method": v.card.get("method"),
                "members": len(v.card.get("members", [])),
                "holdout_r2": v.card.get("metrics", {}).get("holdout_r2"),
                "holdout_mae": v.card.get("metrics", {}).get("holdout_mae"),
                "unit": v.card.get("unit"),
                "created": v.card.get("created"),
            }
        return out

    def options(self) -> dict:
        """What a request may name: targets with a model, alloy families, casting routes in the cards."""
        targets = self.registry.targets()
        castings: list[str] = []
        if targets:
            v = self.version(targets[0])
            if "casting" in v.master:
                castings = sorted(v.master["casting"].dropna().astype(str).unique())
        return {"targets": targets, "families": sorted(self.base.design.families), "castings": castings}

    # --- design -------------------------------------------------------------------------------------------------
    def design_config(self, req: DesignRequest, version: Version):
        """run.py's config for `python run.py stages=[design] design.models=registry:... design.targets.X=...`."""
        base = self.base
        d = base.design
        opt = base.optimizer
        design = dataclasses.replace(
            d,
            targets={t: req.targets.get(t) for t in d.targets},
            min={t: req.minimum.get(t, d.min.get(t)) for t in d.min},
            casting=req.casting,
            family=req.family,
            max_cost=req.max_cost,
            top=int(req.top or d.top),
            fixed={**d.fixed, **req.fixed},
        )
        optimizer = dataclasses.replace(opt, pop_size=req.pop_size or opt.pop_size, n_gen=req.n_gen or opt.n_gen)
        return dataclasses.replace(
            base, design=design, optimizer=optimizer, chem_window=version.config.chem_window, summary=False
        )

    def check(self, req: DesignRequest) -> None:
        if not req.targets:
            raise RequestError("targets", "set at least one target (target_YS, target_UTS, target_EL)")
        families = sorted(self.base.design.families)
        if req.family is not None and req.family not in families:
            raise RequestError("alloy_family", f"unknown family {req.family!r}; allowed: {', '.join(families)}")
        opts = self.options()
        if req.casting is not None and opts["castings"] and req.casting not in opts["castings"]:
            raise RequestError("casting", f"unknown casting {req.casting!r}; allowed: {', '.join(opts['castings'])}")
        for t in [*req.targets, *req.minimum]:
            if t not in self.base.design.targets:
                raise RequestError("targets", f"unknown property {t!r}")
        names = {t: k for k, t in REQUEST_TARGETS.items()}
        for kind, values in (("target_", req.targets), ("min_", req.minimum)):
            for t, v in values.items():
                lo, hi = TARGET_LIMITS.get(t, (float("-inf"), float("inf")))
                field = kind + names.get(t, t).removeprefix("target_")
                if not (v > lo if kind == "target_" else v >= lo) or not v <= hi:
                    raise RequestError(field, f"{v:g} is outside ({lo:g}, {hi:g}]")
        for t, why in design_mod.contradictions(req.targets, req.minimum):
            raise RequestError(names.get(t, t), why)
        if req.casting is not None and "casting" in req.fixed and str(req.fixed["casting"]) != req.casting:
            raise RequestError("fixed.casting", f"{req.fixed['casting']!r} conflicts with casting {req.casting!r}")
        if req.fixed:
            first = self.version(next(iter(req.targets)), req.models.get(next(iter(req.targets))))
            data = first.config.data
            cards = cards_mod.encode(first.master, cards_mod.schema_of(first.master, data), data)
            for key, why in design_mod.fixed_problems(req.fixed, cards, first.config.data):
                raise RequestError(f"fixed.{key}", why)

    def design(self, req: DesignRequest, progress=None) -> dict:
        """{'candidates': ranked top recipes (DataFrame, code names), 'recommended_cards': the recipes as raw
        data cards, 'versions', 'targets', 'units', 'n_feasible', 'reason' (why none, when none)}."""
        from .stages.design import recommend

        self.check(req)
        versions = {t: self.version(t, req.models.get(t)) for t in req.targets}
        try:
            one_dataset(versions)
        except RegistryError as err:
            raise RequestError("models", str(err)) from None
        first = next(iter(versions.values()))
        cfg = self.design_config(req, first)
        models = {t: v.model for t, v in versions.items()}
        try:
            tick = progress or (lambda done, total: None)
            out = recommend(cfg, models, first.config.data, first.config.cleaning, first.master, tick)
        except AlloyHydraError as err:
            raise RequestError("request", str(err)) from None
        top = out.recommendations
        reason = out.reason
        if not len(top):
            wanted = ", ".join(f"{t} {v:g} {out.units[t]}" for t, v in out.targets.items())
            reason = f"no feasible recipe for {wanted}: {out.reason}"
        cards = design_mod.as_raw_cards(top, first.config.data) if len(top) else pd.DataFrame()
        return {
            "candidates": top,
            "recommended_cards": cards,
            "versions": {t: v.ref for t, v in versions.items()},
            "targets": out.targets,
            "units": out.units,
            "elements": [*out.space.schema.elements, out.space.schema.balance],
            "n_feasible": int(len(out.candidates)),
            "reason": reason,
            "data": first.config.data,
            "master": first.master,  # the tested cards the recipes were designed among
        }

    def units(self, targets, models: dict | None = None) -> dict[str, str]:
        """{target: unit} of the versions a request uses."""
        return {t: self.version(t, (models or {}).get(t)).model.unit for t in targets}

    # --- predict ------------------------------------------------------------------------------------------------
    def predict(self, raw: pd.DataFrame, targets=None, models: dict | None = None) -> tuple[pd.DataFrame, dict]:
        """Raw cards -> one row per card with every target's prediction (each target cleans the cards with its
        version's own rules; a card one version rejects keeps that reason), and the versions used."""
        targets = list(targets or self.registry.targets())
        if not targets:
            raise RequestError("models", "the registry has no published model", 404)
        out = raw.copy()
        reasons = pd.Series("", index=raw.index)
        used = {}
        cleaned = {}  # versions trained under one data schema and cleaning share one cleaning of the cards
        for t in targets:
            v = self.version(t, (models or {}).get(t))
            rules = repr((v.config.data, v.config.cleaning, v.config.chem_window))
            if rules not in cleaned:
                cleaned[rules] = clean.clean_for_prediction(raw, v.config, labels=False)
            scored = predict_cards(raw, v.config, v.model, cleaned=cleaned[rules])
            out[f"{t}_pred"], out[f"{t}_std"] = scored[f"{t}_pred"], scored[f"{t}_std"]
            out[f"{t}_in_domain"], out[f"{t}_domain_distance"] = scored["in_domain"], scored["domain_distance"]
            out[f"{t}_domain_reason"] = scored["domain_reason"]
            reasons = reasons.where(reasons != "", scored["rejected_reason"])
            used[t] = v.ref
        out["rejected_reason"] = reasons
        return out, used


def summary_table(result: dict) -> pd.DataFrame:
    """One row per recipe: what a metallurgist decides on (the elements that differ between recipes, route,
    schedules in words, predictions ± σ, chance within tolerance, cost, domain, nearest card, note)."""
    top = result["candidates"]
    varied = [el for el in result["elements"][:-1] if top[el].max() >= 0.05]
    out = pd.DataFrame({"rank": top["rank"]})
    for t in result["targets"]:
        unit = result["units"][t]
        out[f"{t} ({unit})"] = [f"{p:.1f} ± {s:.1f}" for p, s in zip(top[f"{t}_pred"], top[f"{t}_std"])]
    out["P(all within tol)"] = top["p_hit"].round(2)
    out["in domain"] = top["in_domain"]
    out["cost index"] = top["cost_index"].round(3)
    for el in varied:
        out[f"{el} wt%"] = top[el].round(2)
    for c in top.columns:
        if c in result["data"].categoricals or c.endswith("_schedule_readable") or c.endswith("_type"):
            out[c.replace("_schedule_readable", "")] = top[c]
    for c in ("cold_reduction_pct", "hot_reduction_pct", "grain_size_um"):
        if c in top:
            out[c] = top[c]
    out["nearest card"] = top["nearest_card"]
    out["note"] = top["note"]
    return out
