"""The library of metallurgical forms: candidate model inputs a metallurgist would propose for any wrought or
cast aluminium file, built from the data schema alone and chosen among by the data (the symbolic search and its
grouped CV), never typed in per material.

- Hall–Petch: d^-1/2 of every grain-size input (numeric `kind: grain`).
- Work hardening: the von Mises strain of every rolling reduction (a `kind: percent` input named `*reduction*`)
  and the cold strain an anneal leaves (`<schedule>_retained_strain`), each raised to `strain_exponents`
  (Taylor √ε, a Hollomon-type ε^n).
- Solid solution: every supported solute c (always an input) and c^p for `solute_exponents` (Labusch c^2/3).
- Precipitation / ageing: per timed schedule, the Hollomon–Jaffe parameter T_K·(C + log10 t_h)/1000 and the
  log10 of its Arrhenius time, log10 t − Q / (R ln10 T_K), with Q = `activation_kJ_mol` (a config option).
- Products: each of the `product_solutes` solutes that vary most in the cards times the Hall–Petch, the √ε and
  the ageing terms (a solute that raises the work-hardening rate or the precipitate density).

Each form is a named interaction, "name := formula over card columns" (features.Featuriser evaluates it), so a
model.json carries the formulas it was fitted with and needs no library to predict. Which solutes enter depends
on the training cards (`expand`), so the featuriser expands the library in `fit`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import expr

LN10 = 2.302585092994046
R_GAS = 8.314


def spec(data, forms, exclude=()) -> dict | None:
    """The library's inputs for a data config (plain values: the featuriser's parameter must clone), or None when
    `data.forms.enabled` is false. A form of a column in `exclude` (train.exclude) is not offered."""
    if forms is None or not forms.enabled:
        return None
    exclude = set(exclude)
    numeric = {c: s for c, s in data.numeric.items() if c not in exclude}
    strains = [c for c, s in numeric.items() if s.kind == "percent" and "reduction" in c.lower()]
    timed = [
        name
        for name, s in data.schedules.items()
        if (s.column is not None or (s.temp_column is not None and s.time_column is not None))
        and not {f"{name}_T_time_weighted_C", f"{name}_time_total_s"} & exclude
    ]
    retained = [
        f"{name}_retained_strain"
        for name, s in data.schedules.items()
        if s.kind == "recryst" and f"{name}_retained_strain" not in exclude
    ]
    return {
        "grain": [c for c, s in numeric.items() if s.kind == "grain"] if forms.hall_petch else [],
        "reductions": strains,
        "strains": retained,
        "schedules": timed,
        "elements": [
            e for e in data.composition_columns if e not in (data.balance_element, "Other") and e not in exclude
        ],
        "strain_exponents": [float(p) for p in forms.strain_exponents],
        "solute_exponents": [float(p) for p in forms.solute_exponents],
        "min_share": float(forms.min_share),
        "min_wt": float(forms.min_wt),
        "product_solutes": int(forms.product_solutes),
        "hollomon_jaffe_C": float(forms.hollomon_jaffe_C),
        "activation_kJ_mol": float(forms.activation_kJ_mol),
    }


def _tag(p: float) -> str:
    return f"{p:g}".replace(".", "_").replace("-", "m")


def supported(spec: dict, cards: pd.DataFrame) -> list[str]:
    """Solutes a share of the cards holds (>= min_wt in >= min_share of them), most varied first."""
    out = []
    for e in spec["elements"]:
        if e not in cards:
            continue
        v = pd.to_numeric(cards[e], errors="coerce").to_numpy(float)
        if np.mean(np.nan_to_num(v) >= spec["min_wt"]) >= spec["min_share"]:
            out.append((float(np.nanstd(v)), e))
    return [e for _, e in sorted(out, key=lambda t: -t[0])]


def expand(spec: dict | None, cards: pd.DataFrame) -> list[str]:
    """The library as named interactions ("name := formula") for these training cards."""
    if not spec:
        return []
    forms: dict[str, str] = {}
    hp = {f"hall_petch_{d}": f"1/sqrt(max({d}, 0.1))" for d in spec["grain"] if d in cards}
    forms.update(hp)
    strain_of = {
        f"{c}_vm_strain": f"1.1547*log(100/(100 - min(max({c}, 0), 99)))" for c in spec["reductions"] if c in cards
    }
    strain_of.update({s: f"max({s}, 0)" for s in spec["strains"] if s in cards})
    taylor = {}
    for name, formula in strain_of.items():
        if name.endswith("_vm_strain"):
            forms[name] = formula
        for p in spec["strain_exponents"]:
            key = f"{name}_pow{_tag(p)}"
            forms[key] = f"({formula})^{p:g}"
            if p == 0.5:
                taylor[key] = forms[key]
    ageing = {}
    for s in spec["schedules"]:
        T, t = f"{s}_T_time_weighted_C", f"{s}_time_total_s"
        if T not in cards or t not in cards:
            continue
        ageing[f"hollomon_jaffe_{s}"] = (
            f"({T} + 273.15)*({spec['hollomon_jaffe_C']:g} + log(max({t}, 36)/3600)/{LN10:.6f})/1000"
        )
        q = spec["activation_kJ_mol"] * 1e3 / (R_GAS * LN10)
        forms[f"arrhenius_{s}"] = f"log(max({t}, 1))/{LN10:.6f} - {q:.1f}/({T} + 273.15)"
    forms.update(ageing)
    solutes = supported(spec, cards)
    for e in solutes:
        for p in spec["solute_exponents"]:
            forms[f"{e}_pow{_tag(p)}"] = f"max({e}, 0)^{p:g}"
    for e in solutes[: spec["product_solutes"]]:
        for name, formula in {**hp, **taylor, **ageing}.items():
            forms[f"{e}_x_{name}"] = f"{e}*({formula})"
    return [f"{k} := {v}" for k, v in forms.items()]


def power_label(name: str, p: float) -> str:
    """What a power of an input stands for in the library (equation.txt's glossary)."""
    if "strain" in name:
        return " (Taylor work hardening)" if abs(p - 0.5) < 1e-9 else " (power-law work hardening, Hollomon-type)"
    return " (Labusch solid-solution strengthening)" if abs(p - 0.667) < 1e-3 else ""


# equation.txt's words for the library's names (features.describe tries these first; powers: features.describe)
GLOSSARY = [
    (r"hall_petch_(.+)", "Hall–Petch term {0}^-1/2 (grain-boundary strengthening)"),
    (r"(.+)_vm_strain", "von Mises strain of the {0} rolling reduction, 2/√3 · ln(1/(1 − r))"),
    (r"hollomon_jaffe_(.+)", "Hollomon–Jaffe parameter of the {0} schedule, T_K·(C + log10 t_h)/1000"),
    (r"arrhenius_(.+)", "log10 of the {0} schedule's Arrhenius time, log10 t − Q/(R ln10 T_K)"),
]


# equation.txt's summary: a metallurgist reads an additive strength model as a handful of mechanisms (σ0 + solid
# solution + grain boundaries + dislocations + precipitates), so each term of the sum is filed under one. A term
# that multiplies a solute with a process form (Mg × √ε) goes under the process form: it is how much the solute
# changes that mechanism.
MECHANISMS = (
    "grain size (Hall–Petch)",
    "cold work and recovery",
    "heat treatment (time–temperature)",
    "process route",
    "composition (solid solution)",
    "other inputs",
)


def mechanism(name: str, data, categorical=()) -> str:
    """The strengthening mechanism a model input stands for (one of MECHANISMS), from its name and the data
    config's kinds of columns."""
    product = re.fullmatch(r"([A-Z][a-z]?)_x_(.+)", name)
    if product:
        return mechanism(product.group(2), data, categorical)
    power = re.fullmatch(r"(.+)_pow(m?[0-9_]+)", name)
    if power:
        return mechanism(power.group(1), data, categorical)
    numeric = data.numeric.get(name)
    if name.startswith("hall_petch_") or (numeric is not None and numeric.kind == "grain"):
        return MECHANISMS[0]
    reduction = numeric is not None and numeric.kind == "percent" and "reduction" in name.lower()
    if reduction or "strain" in name or name.endswith(("_log_dose", "_jmak_fraction")):
        return MECHANISMS[1]
    schedules = tuple(f"{s}_" for s in data.schedules)  # incl. a schedule's categorical (ageing_type=...)
    if name.startswith(("hollomon_jaffe_", "arrhenius_", "adequate_")) or name.startswith(schedules):
        return MECHANISMS[2]
    if "=" in name and name.split("=", 1)[0] in categorical:
        return MECHANISMS[3]
    if name in data.composition_columns or name == data.balance_element:
        return MECHANISMS[4]
    return MECHANISMS[5]


def by_mechanism(node: dict, X: dict, data, categorical=()) -> list[dict]:
    """The additive terms of expression `node` grouped by mechanism and evaluated on cards (X: input name ->
    values): per mechanism its inputs, the 5–95 % range of its summed terms over the cards and its share of the
    sum's variance (cov(group, S) / var(S); the shares add up to 1). Mechanisms in order of share."""
    total = np.broadcast_to(expr.evaluate(node, X), (len(next(iter(X.values()))),)) if X else np.zeros(0)
    groups: dict[str, dict] = {}
    for sign, term in expr.terms(node):
        names = expr.variables(term)
        if not names:
            continue
        kinds = {mechanism(v, data, categorical) for v in names}
        kind = min(kinds, key=MECHANISMS.index)
        value = sign * np.broadcast_to(expr.evaluate(term, X), total.shape)
        g = groups.setdefault(kind, {"mechanism": kind, "inputs": [], "value": np.zeros(total.shape)})
        g["inputs"] += [v for v in sorted(names) if v not in g["inputs"]]
        g["value"] = g["value"] + value
    var = float(np.nanvar(total)) if len(total) > 1 else 0.0
    out = []
    for g in groups.values():
        v = g.pop("value")
        ok = np.isfinite(v) & np.isfinite(total)
        lo, hi = np.percentile(v[ok], [5, 95]) if ok.any() else (np.nan, np.nan)
        c = np.cov(v[ok], total[ok]) if ok.sum() > 1 else np.full((2, 2), np.nan)
        share = float(c[0, 1] / c[1, 1]) if var > 0 and c[1, 1] > 0 else float("nan")
        out.append({**g, "range": float(hi - lo), "share": share})
    return sorted(out, key=lambda g: -abs(g["share"]) if np.isfinite(g["share"]) else 0.0)
