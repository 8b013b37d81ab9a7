"""The design space: what the cards support (elements, categoricals, process numbers and schedule steps by
stratum), and the limits on what may be asked of it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import cards as cards_mod
from ..config import DesignConfig
from ..errors import ConfigError
from ..model import knn

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

    def __init__(self, master: pd.DataFrame, data, window, design=None, fixed: dict | None = None):
        """`design`: a DesignConfig (default: its defaults) whose fixed, bounds, stratify_by, outcomes, support,
        allow and quantiles shape the space; `fixed` replaces design.fixed (run.py adds design.casting to it)."""
        design = DesignConfig() if design is None else design
        fixed = dict(design.fixed if fixed is None else fixed)
        bounds = {k: list(v) for k, v in design.bounds.items()}
        support, quantiles = dict(design.support), list(design.quantiles)
        self.data = data
        self.schema = cards_mod.schema_of(master, data)
        # numbers a card records but a caster cannot set (grain size follows from composition and route): not
        # decision variables; a recipe gets what the most similar tested recipes showed
        self.outcomes = [c for c in design.outcomes if c in self.schema.numeric]
        self.table = cards_mod.encode(master, self.schema, data).reset_index(drop=True)
        problems = fixed_problems(fixed, self.table, data)
        if problems:
            raise ValueError("; ".join(f"design.fixed.{k}: {why}" for k, why in problems))
        min_share = float(support["min_share"])
        self.unsupported: dict[str, float] = {}  # element -> share of cards containing it (fixed at typical)
        self.vars: list[Var] = self._element_vars(
            window, bounds, float(support["min_wt"]), min_share, set(design.allow), quantiles
        )
        self.vars += self._category_vars(fixed, min_share)
        self.vars += self._process_vars(fixed, [c for c in design.stratify_by if c in self.data.categoricals])
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


def cost_index(cards: pd.DataFrame, weights: dict, balance: str = "Al") -> np.ndarray:
    """Raw-material cost relative to pure Al: Σ wt%/100 · price ratio (weights; check_prices makes sure every
    element a recipe can hold has one)."""
    elements = [c for c in cards if c in weights or c == balance]  # a frame or a dict of arrays
    return sum(np.asarray(cards[e], float) / 100.0 * float(weights.get(e, 1.0)) for e in elements)


def n_additions(cards: pd.DataFrame, elements, threshold: float = 0.1) -> np.ndarray:
    return (np.column_stack([np.asarray(cards[e], float) for e in elements]) > threshold).sum(axis=1)
