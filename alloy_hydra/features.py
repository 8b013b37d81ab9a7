"""The one featuriser: cleaned cards (real, synthetic or designed) -> model inputs.

Inputs are the card's physics only: element contents (incl. the balance), process numbers, thermal features
derived from the schedules, adequacy flags, one-hot categoricals. Group ids (file_name, card, alloy, group)
are never features: the featuriser only takes columns named by the data schema.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from . import expr, forms
from .errors import ConfigError
from .schedule import has_times

# below the resolution recipes are written at (0.01 wt%): a constant 0.005 (half a detection limit) is 0
UNSEEN_TOL = 0.01
_INDICATOR = re.compile(r"\[\s*([^\]=]+?)\s*=\s*([^\]]*?)\s*\]")  # [quench=Furnace]: 1 on such cards, else 0
_NAMED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:=\s*(.+?)\s*$")  # "hall_petch_d := 1/sqrt(d)"


def split_name(formula: str) -> tuple[str, str]:
    """(column name, formula) of an interaction: "name := formula" is named, else the formula without spaces."""
    m = _NAMED.match(formula)
    return (m.group(1), m.group(2)) if m else (formula.replace(" ", ""), formula)


def default_columns(data) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns for a data config."""
    numeric = list(data.composition_columns) + [data.balance_element] + list(data.numeric)
    categorical = list(data.categoricals)
    for name, spec in data.schedules.items():
        numeric += [f"{name}_steps", f"{name}_temp_max_C"]
        if has_times(spec):
            numeric += [f"{name}_time_total_s", f"{name}_T_time_weighted_C"]
            if spec.threshold_C is not None:
                numeric.append(f"{name}_time_at_ge_{spec.threshold_C:g}C_s")
        if spec.kind == "homog":
            numeric.append(f"adequate_{name}")
        if spec.kind == "recryst":
            numeric += [
                f"adequate_{name}",
                f"adequate_{name}_batch",
                f"adequate_{name}_flash",
                f"{name}_log_dose",
                f"{name}_jmak_fraction",
                f"{name}_retained_strain",
            ]
            categorical.append(f"{name}_type")
    return numeric, categorical


# what each derived input means (equation.txt's glossary); <s> = a schedule name (homog, recryst, ...)
_GLOSSARY = [
    (r"(.+)_steps$", "number of steps of the {0} schedule"),
    (r"(.+)_time_total_s$", "total time of the {0} schedule (s)"),
    (r"(.+)_temp_max_C$", "peak temperature of the {0} schedule (°C; 25 = none)"),
    (r"(.+)_T_time_weighted_C$", "time-weighted mean temperature of the {0} schedule (°C)"),
    (r"(.+)_time_at_ge_(.+)C_s$", "time of the {0} schedule at or above {1} °C (s)"),
    (
        r"adequate_(.+)_(batch|flash|direct)$",
        "1 if the {0} anneal is of type {1} and recrystallises by the "
        "kinetic rule (Arrhenius-equivalent time ≥ the rule's minimum)",
    ),
    (r"adequate_(.+)$", "1 if the {0} treatment meets its adequacy rule (cleaning config), else 0"),
    (
        r"(.+)_log_dose$",
        "log10 of the {0} anneal's Arrhenius-equivalent time × strain² over the rule's minimum "
        "(0 = just enough to recrystallise; −3 = no anneal)",
    ),
    (r"(.+)_jmak_fraction$", "recrystallised fraction after the {0} anneal, JMAK: 1 − exp(−3·dose^1.5)"),
    (
        r"(.+)_retained_strain$",
        "cold strain left after the {0} anneal: von Mises strain × (1 − recrystallised fraction)",
    ),
    (r"(.+)_pct$", "{0} (%)"),
    (r"(.+)_mm$", "{0} (mm)"),
    (r"(.+)_um$", "{0} (µm)"),
]


def unit_of(name: str, data) -> str:
    """The unit of a card column or model input, from its name (the schema's suffixes) or the data config."""
    if data is not None and (name in data.composition_columns or name == data.balance_element):
        return "wt%"
    for suffix, unit in (("_C", "°C"), ("_s", "s"), ("_pct", "%"), ("_um", "µm"), ("_mm", "mm")):
        if name.endswith(suffix):
            return unit
    step = re.search(r"_(T|lt)\d+$", name)  # a recipe table's schedule step: temperature, log10 of its time
    return {"T": "°C", "lt": "log10 s"}[step.group(1)] if step else ""


def describe(name: str, categorical=(), elements=(), columns=None) -> str:
    """A model input in words (for equation.txt): element, one-hot level, the card column it comes from
    (`columns`: model name -> the file's column), derived feature, a form of the library (forms.py) or an
    interaction."""
    if columns and name in columns:
        unit = unit_of(name, None) if name not in elements else "wt%"
        return f"the card's {columns[name]!r} column" + (
            f" ({unit})" if unit and f"({unit})" not in columns[name] else ""
        )
    if name in elements:
        return f"{name} content (wt%)"
    if "=" in name and name.split("=", 1)[0] in categorical:
        column, level = name.split("=", 1)
        return f"1 if {column} is {level}, else 0"
    product = re.fullmatch(r"([A-Z][a-z]?)_x_(.+)", name)
    if product:
        return f"{product.group(1)} (wt%) × {describe(product.group(2), categorical, elements, columns)}"
    power = re.fullmatch(r"(.+)_pow(m?[0-9_]+)", name)
    if power:
        p = float(power.group(2).replace("_", ".").replace("m", "-"))
        base = describe(power.group(1), categorical, elements, columns)
        return f"[{base}]^{p:g}{forms.power_label(power.group(1), p)}"
    for pattern, text in forms.GLOSSARY:
        m = re.fullmatch(pattern, name)
        if m:
            return text.format(*m.groups())
    for pattern, text in _GLOSSARY:
        m = re.fullmatch(pattern, name)
        if m:
            return text.format(*m.groups())
    if any(op in name for op in "*/()^["):
        parts = [
            n
            for n in dict.fromkeys(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", _INDICATOR.sub("", name)))
            if n not in ("sqrt", "log", "exp", "abs", "min", "max")
        ]
        inner = "; ".join(
            [f"{n} = {describe(n, categorical, elements, columns)}" for n in parts]
            + [f"[{c}={v}] = 1 if {c} is {v}, else 0" for c, v in _INDICATOR.findall(name)]
        )
        return f"interaction (data.interactions) of {inner}" if inner else "interaction (data.interactions)"
    return name


class Featuriser(BaseEstimator, TransformerMixin):
    """sklearn transformer: learns categorical levels and fill values on fit; transform gives a float frame."""

    def __init__(self, numeric=(), categorical=(), interactions=(), drop_constant=True, forms=None):
        self.numeric = numeric
        self.categorical = categorical
        # formulas over card columns, e.g. "Mg*Mn", "1/sqrt(grain_size_um)"; [column=level] is a categorical's
        # indicator, e.g. "Zn*Mg*[quench=Furnace]" (a level the training cards lack is 0 everywhere);
        # "name := formula" names the input
        self.interactions = interactions
        self.drop_constant = drop_constant
        self.forms = forms  # forms.spec(...) of the library of metallurgical forms, or None

    def fit(self, cards: pd.DataFrame, y=None):
        named = {}
        for f in [*self.interactions, *forms.expand(self.forms, cards)]:  # a config's own form wins a name
            named.setdefault(split_name(f)[0], f)
        self.formulas_ = list(named.values())
        self.levels_ = {c: sorted(cards[c].astype(str).unique()) for c in self.categorical}
        self.fill_ = {
            c: float(np.nanmedian(cards[c].to_numpy(float))) if cards[c].notna().any() else 0.0 for c in self.numeric
        }
        full = self._frame(cards)
        keep = full.columns[full.nunique() > 1] if self.drop_constant else full.columns
        self.columns_ = list(keep)
        return self

    def _frame(self, cards: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self._columns(cards), index=cards.index)

    def _columns(self, cards) -> dict:
        """Feature arrays from a frame of cards or from a dict of column arrays (the design search loop)."""
        arrays = isinstance(cards, dict)
        n = _n_rows(cards)
        out = {}
        for c in self.numeric:  # column by column: a mixed-dtype frame slice costs more than the model
            v = np.asarray(cards[c], dtype=float) if arrays else cards[c].to_numpy(dtype=float, na_value=np.nan)
            out[c] = np.where(np.isnan(v), self.fill_[c], v)
        onehot = {}
        for c, levels in self.levels_.items():
            values = np.asarray(cards[c]).astype(str) if arrays else cards[c].astype(str).to_numpy()
            for level in levels:
                onehot[f"{c}={level}"] = (values == level).astype(float)
        for formula, tree, levels in self._trees():  # parsed with ast into expression trees, evaluated by numpy
            cols = {**out, **{k: onehot[k] if k in onehot else np.zeros(n) for k in levels}} if levels else out
            value = np.broadcast_to(expr.evaluate(tree, cols), (n,)).astype(float)
            out[split_name(formula)[0]] = np.where(np.isfinite(value), value, 0.0)
        out.update(onehot)
        return out

    def _trees(self) -> list:
        """(formula, tree, indicator names) per interaction, parsed once per featuriser (the design loop
        featurises ~600 times)."""
        key = tuple(getattr(self, "formulas_", self.interactions))
        if getattr(self, "_parsed", (None,))[0] != key:
            self._parsed = (key, [(f, *self._parse(f)) for f in key])
        return self._parsed[1]

    def _parse(self, formula: str) -> tuple[dict, list]:
        """An interaction formula -> (tree, indicators); each [column=level] becomes the variable "column=level"
        (its one-hot indicator). A column that is not one of the categoricals is a ConfigError."""
        names = {}

        def indicator(m):
            column, level = m.group(1).strip(), m.group(2).strip()
            if column not in self.categorical:
                raise ConfigError(
                    f"interaction {formula!r}: [{column}={level}] names {column!r}, which is not one "
                    f"of the categorical columns {list(self.categorical)}"
                )
            alias = f"_level{len(names)}"  # an identifier ast can parse, mapped back to the one-hot's name
            names[alias] = f"{column}={level}"
            return f" {alias} "

        tree = expr.parse(_INDICATOR.sub(indicator, split_name(formula)[1]).replace("^", "**"), names)
        return tree, sorted(set(names.values()))

    def transform(self, cards: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.transform_array(cards), columns=self.columns_, index=cards.index)

    def transform_array(self, cards: pd.DataFrame) -> np.ndarray:
        """The feature matrix in `columns_` order, without building intermediate frames."""
        cols = self._columns(cards)
        n = _n_rows(cards)
        return (
            np.column_stack([cols[c] if c in cols else np.zeros(n) for c in self.columns_])
            if self.columns_
            else np.zeros((n, 0))
        )

    def unseen(self, cards) -> np.ndarray:
        """Per card: does it change an input the training cards never varied (an element no card contains, a
        process number every card shares)? Such an input is no model feature (constant columns are dropped), so
        no model or distance can see it: the applicability domain asks this instead."""
        fixed = [c for c in self.numeric if c not in self.columns_ and c in cards]
        out = np.zeros(_n_rows(cards), bool)
        for c in fixed:
            v = np.asarray(cards[c], dtype=float)
            v = np.where(np.isnan(v), self.fill_[c], v)
            out |= np.abs(v - self.fill_[c]) > UNSEEN_TOL + 1e-9 * abs(self.fill_[c])
        return out

    def to_json(self) -> dict:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "interactions": list(self.formulas_),  # the config's own and the library's, as fitted
            "levels": self.levels_,
            "fill": self.fill_,
            "columns": self.columns_,
        }

    @classmethod
    def from_json(cls, d: dict) -> Featuriser:
        f = cls(d["numeric"], d["categorical"], d["interactions"])
        f.levels_, f.fill_, f.columns_ = d["levels"], d["fill"], d["columns"]
        f.formulas_ = list(d["interactions"])
        f._trees()  # parses every interaction now: a file with anything but plain formulas is rejected on load
        return f

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.columns_, dtype=object)


def _n_rows(cards) -> int:
    return len(next(iter(cards.values()))) if isinstance(cards, dict) else len(cards)
