"""Thermal schedules as labs write them -> canonical `T/seconds` steps joined by ` + `, and the process columns
derived from them (step arrays -> thermal features, adequacy, recrystallisation dose): the one derivation used
for cleaned cards, synthetic rows and designed recipes.

Accepted per step: a temperature and a time, in either order, separated by `/`, `x`, `×`, `@`, `at`, `for`,
`,` or spaces. Temperature units: C, °C, ºC, degC, F, °F, K (bare number = °C). Time units: s, sec, min, ',
h, hr, hrs, hours, d, days (bare number = seconds). In a bare pair `A/B` the first number is the temperature.
Steps are joined by `+`, `;` or `then`. Empty, `none`, `-`, `n/a`, `no` mean no treatment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import CleaningConfig
from .errors import ConfigError, ScheduleError
from .schema import RECRYST_TYPES

MELTING_C = 660.0  # pure Al; any step above this is a typo, not a heat treatment

_TEMP_UNITS = {
    "c": "C",
    "°c": "C",
    "ºc": "C",
    "degc": "C",
    "deg c": "C",
    "°": "C",
    "f": "F",
    "°f": "F",
    "ºf": "F",
    "degf": "F",
    "k": "K",
}
_TIME_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "'": 60.0,
    "m": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_NONE = {"", "none", "-", "--", "n/a", "na", "no", "nan", "0", "as rolled", "as-rolled"}

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN = re.compile(rf"\s*({_NUM})\s*(°\s*[cCfF]|º\s*[cCfF]|deg\s*[cCfF]|[a-zA-Z]+|'|°)?\s*")
_SEP = re.compile(r"\s*(?:/|x\b|×|@|at\b|for\b|,)?\s*", re.IGNORECASE)
_STEP_SPLIT = re.compile(r"\s*(?:\+|;|\bthen\b)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    temp_C: float
    time_s: float


def _to_celsius(value: float, unit: str) -> float:
    if unit == "F":
        return (value - 32.0) * 5.0 / 9.0
    if unit == "K":
        return value - 273.15
    return value


def _read_tokens(text: str, step: str) -> list[tuple[float, str | None]]:
    tokens, pos = [], 0
    while pos < len(text):
        sep = _SEP.match(text, pos)
        pos = sep.end()
        if pos >= len(text):
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ScheduleError(f"cannot read step {step!r} at {text[pos:]!r}")
        number, unit = float(m.group(1)), m.group(2)
        tokens.append((number, unit.replace(" ", "").lower() if unit else None))
        pos = m.end()
    return tokens


def parse_step(step: str) -> Step:
    tokens = _read_tokens(step, step)
    if len(tokens) != 2:
        raise ScheduleError(f"step {step!r} needs one temperature and one time, found {len(tokens)} numbers")
    temp = time = None
    for number, unit in tokens:
        if unit is not None and unit in _TEMP_UNITS:
            if temp is not None:
                raise ScheduleError(f"step {step!r} has two temperatures")
            temp = _to_celsius(number, _TEMP_UNITS[unit])
        elif unit is not None and unit in _TIME_UNITS:
            if time is not None:
                raise ScheduleError(f"step {step!r} has two times")
            time = number * _TIME_UNITS[unit]
        elif unit is not None:
            raise ScheduleError(f"step {step!r}: unknown unit {unit!r}")
    bare = [n for n, u in tokens if u is None]
    if temp is None and bare:
        temp = bare.pop(0)  # bare pair: temperature first
    if time is None and bare:
        time = bare.pop(0)  # bare number = seconds
    if temp is None or time is None:
        raise ScheduleError(f"step {step!r} needs one temperature and one time")
    if not (math.isfinite(temp) and math.isfinite(time)):
        raise ScheduleError(f"step {step!r} has a non-finite number")
    if temp <= -273.15 or temp > MELTING_C:
        raise ScheduleError(f"step {step!r}: {temp:.0f} °C is outside 0-{MELTING_C:.0f} °C")
    if time <= 0:
        raise ScheduleError(f"step {step!r}: time must be positive")
    return Step(temp_C=temp, time_s=time)


def parse(text) -> list[Step]:
    """Parse a schedule string into steps; raises ScheduleError on anything it cannot read."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    text = str(text).strip()
    if text.lower() in _NONE:
        return []
    parts = _STEP_SPLIT.split(text)
    if any(p.strip() == "" for p in parts):
        raise ScheduleError(f"empty step in {text!r}")
    return [parse_step(p) for p in parts]


def _fmt(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def canonical(steps: list[Step]) -> str:
    """`T/seconds` steps joined by ` + ` (empty string = no treatment); parse(canonical(s)) == s exactly."""
    return " + ".join(f"{_fmt(s.temp_C)}/{_fmt(s.time_s)}" for s in steps)


def human(steps: list[Step]) -> str:
    """As a metallurgist writes it: `545 °C × 2.5 h + 490 °C × 24 h` (seconds and minutes below 2 min / 2 h)."""

    def dur(t: float) -> str:
        return f"{t:.3g} s" if t < 120 else f"{t / 60:.3g} min" if t < 7200 else f"{t / 3600:.3g} h"

    return " + ".join(f"{s.temp_C:.0f} °C × {dur(s.time_s)}" for s in steps)


def features(
    steps: list[Step], prefix: str, ambient_C: float = CleaningConfig.ambient_C, threshold_C: float | None = None
) -> dict[str, float]:
    """Numeric features of one schedule. No treatment means ambient temperature and zero time."""
    total = sum(s.time_s for s in steps)
    out = {
        f"{prefix}_steps": float(len(steps)),
        f"{prefix}_time_total_s": float(total),
        f"{prefix}_temp_max_C": max((s.temp_C for s in steps), default=ambient_C),
        f"{prefix}_T_time_weighted_C": (sum(s.temp_C * s.time_s for s in steps) / total) if total else ambient_C,
    }
    if threshold_C is not None:
        out[f"{prefix}_time_at_ge_{threshold_C:g}C_s"] = float(sum(s.time_s for s in steps if s.temp_C >= threshold_C))
    return out


def time_at_or_above(steps: list[Step], temp_C: float) -> float:
    return float(sum(s.time_s for s in steps if s.temp_C >= temp_C))


class BadRecrystType(Exception):
    """A recryst_type written on a card that is not one of RECRYST_TYPES (cleaning names the cell)."""

    def __init__(self, name, i, written):
        self.name = name
        self.i = i
        self.written = written


def has_times(spec) -> bool:
    return bool(spec.column or spec.time_column)


def step_arrays(lists) -> tuple[np.ndarray, np.ndarray]:
    """Parsed schedules (lists of Steps) -> (temperatures, times) arrays, NaN-padded to the longest."""
    m = max((len(s) for s in lists), default=0)
    temp, time = np.full((len(lists), m), np.nan), np.full((len(lists), m), np.nan)
    for i, steps in enumerate(lists):
        for j, st in enumerate(steps):
            temp[i, j], time[i, j] = st.temp_C, st.time_s
    return temp, time


def _time_at_or_above(temp, time, limit) -> np.ndarray:
    return np.nansum(np.where(temp >= limit, time, 0.0), axis=1)


R_GAS = 8.314
# the cleaning rule's recrystallised fraction 1 - exp(-3·dose^JMAK_N): a literature Avrami exponent for Al-Mg
# sheet, a prior a config's kinetic constants scale (config.recryst_rule), not any material's measured value
JMAK_N = 1.5


def rolling_strain(reduction_pct) -> np.ndarray:
    """von Mises equivalent strain of a plane-strain rolling reduction (%)."""
    r = np.clip(np.asarray(reduction_pct, float), 0.0, 99.0) / 100.0
    return (2.0 / np.sqrt(3.0)) * np.log(1.0 / (1.0 - r))


def dose(rule, temp, time, numbers: dict, name: str) -> np.ndarray:
    """A schedule's worth under an adequacy rule, in seconds: plain, time at or above min_temp_C; kinetic,
    Arrhenius-equivalent time at min_temp_C scaled by strain^p (see AdequacyRule; unknown strain: NaN)."""
    if getattr(rule, "activation_kJ_mol", None) is None:
        return _time_at_or_above(temp, time, rule.min_temp_C)
    q = float(rule.activation_kJ_mol) * 1e3 / R_GAS
    factor = np.exp(-q * (1.0 / (temp + 273.15) - 1.0 / (float(rule.min_temp_C) + 273.15)))
    t_eq = np.nansum(np.where(np.isfinite(temp), time * factor, 0.0), axis=1)
    if getattr(rule, "strain_from", None):
        if rule.strain_from not in numbers:
            raise ConfigError(
                f"cleaning rule for {name}: strain_from={rule.strain_from!r} is not a numeric column "
                f"of this dataset (has {sorted(numbers)}); set it to one or to null"
            )
        t_eq = t_eq * rolling_strain(numbers[rule.strain_from]) ** float(rule.strain_exponent)
    return t_eq


def adequate(rule, temp, time, numbers: dict, name: str) -> np.ndarray:
    """1.0 where a schedule satisfies an adequacy rule, else 0.0 (unknown strain: 0)."""
    return (dose(rule, temp, time, numbers, name) >= float(rule.min_time_s)).astype(float)  # NaN -> False


def _canonical_rows(temp, time) -> list[str]:
    return [canonical([Step(a, b) for a, b in zip(tr, sr) if np.isfinite(a)]) for tr, sr in zip(temp, time)]


def infer_recryst_type(temp, time, cleaning) -> np.ndarray:
    """recryst_type from the schedule alone: none / flash (short) / batch (long) / other (rule in README)."""
    n, total = np.isfinite(temp).sum(axis=1), np.nansum(time, axis=1)
    return np.where(
        n == 0,
        "none",
        np.where(total <= cleaning.flash_max_s, "flash", np.where(total >= cleaning.batch_min_s, "batch", "other")),
    )


def schedule_block(
    arrays_by: dict, written_by: dict, data, cleaning, index, strings: bool = True, numbers: dict | None = None
) -> pd.DataFrame:
    """Canonical schedule strings + numeric thermal features from step arrays (temperature °C, time s):
    the one derivation used for cleaned cards, synthetic rows and designed recipes. Vectorised. `numbers`:
    the card's process numbers (name -> array), for kinetic adequacy rules that scale with cold strain."""
    return pd.DataFrame(schedule_columns(arrays_by, written_by, data, cleaning, strings, numbers), index=index)


def _recryst_columns(name: str, temp, time, written, cleaning, numbers: dict) -> dict:
    """A recrystallisation anneal: its type (as written, else inferred), whether it is adequate for that type,
    and how far past recrystallisation it goes."""
    w = (
        np.array([str(x).strip().lower() for x in written], dtype=object)
        if written is not None
        else np.full(len(temp), "", dtype=object)
    )
    rtype = np.where(w != "", w, infer_recryst_type(temp, time, cleaning)).astype(object)
    bad = ~np.isin(rtype, RECRYST_TYPES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BadRecrystType(name, i, written[i])
    cols = {f"{name}_type": rtype}
    flags = {}
    for kind in ("batch", "flash", "direct"):
        rule = getattr(cleaning, f"recryst_{kind}")
        flags[f"adequate_{name}_{kind}"] = (
            (rtype == kind) & (adequate(rule, temp, time, numbers, f"recryst_{kind}") > 0)
        ).astype(float)
    cols[f"adequate_{name}"] = np.max(np.vstack(list(flags.values())), axis=0)
    # how far past (or short of) recrystallisation the anneal is, by the batch rule, whatever its type:
    # a continuous input, so a formula can see partial recrystallisation (-3 = no anneal or no cold work)
    rule = cleaning.recryst_batch
    ratio = dose(rule, temp, time, numbers, "recryst_batch") / float(rule.min_time_s)
    with np.errstate(invalid="ignore"):  # unknown strain stays NaN (the featuriser fills it)
        cols[f"{name}_log_dose"] = np.where(np.isfinite(ratio), np.log10(np.clip(ratio, 1e-3, None)), np.nan)
    # JMAK (Avrami n = JMAK_N) recrystallised fraction, 95 % where the rule calls the anneal adequate, and
    # the cold strain it leaves: the retained work hardening that separates O, H2x and H1x tempers
    fraction = 1.0 - np.exp(-3.0 * np.clip(ratio, 0.0, None) ** JMAK_N)
    cols[f"{name}_jmak_fraction"] = fraction
    strain = (
        rolling_strain(numbers[rule.strain_from])
        if getattr(rule, "strain_from", None) and rule.strain_from in numbers
        else np.full(len(temp), np.nan)
    )
    cols[f"{name}_retained_strain"] = strain * (1.0 - fraction)
    return {**cols, **flags}


def schedule_columns(
    arrays_by: dict, written_by: dict, data, cleaning, strings: bool = True, numbers: dict | None = None
) -> dict:
    ambient = float(cleaning.ambient_C)
    numbers = numbers or {}
    cols = {}
    for name, spec in data.schedules.items():
        temp, time = arrays_by[name]
        n = np.isfinite(temp).sum(axis=1).astype(float)
        total = np.nansum(time, axis=1)
        if has_times(spec) and strings:
            cols[f"{name}_schedule"] = _canonical_rows(temp, time)
        cols[f"{name}_steps"] = n
        if has_times(spec):
            cols[f"{name}_time_total_s"] = total
        cols[f"{name}_temp_max_C"] = np.where(
            n > 0, np.nanmax(np.where(np.isfinite(temp), temp, -np.inf), axis=1, initial=-np.inf), ambient
        )
        if has_times(spec):
            weighted = np.nansum(temp * time, axis=1)
            cols[f"{name}_T_time_weighted_C"] = np.where(total > 0, weighted / np.where(total > 0, total, 1), ambient)
            if spec.threshold_C is not None:
                cols[f"{name}_time_at_ge_{spec.threshold_C:g}C_s"] = _time_at_or_above(temp, time, spec.threshold_C)
        if spec.kind == "homog":
            cols[f"adequate_{name}"] = adequate(cleaning.homog, temp, time, numbers, f"{name} (homog)")
        if spec.kind == "recryst":
            written = written_by.get(name) if written_by else None
            cols.update(_recryst_columns(name, temp, time, written, cleaning, numbers))
    return cols
