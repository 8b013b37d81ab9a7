"""Thermal schedules as labs write them -> canonical `T/seconds` steps joined by ` + `.

Accepted per step: a temperature and a time, in either order, separated by `/`, `x`, `×`, `@`, `at`, `for`,
`,` or spaces. Temperature units: C, °C, ºC, degC, F, °F, K (bare number = °C). Time units: s, sec, min, ',
h, hr, hrs, hours, d, days (bare number = seconds). In a bare pair `A/B` the first number is the temperature.
Steps are joined by `+`, `;` or `then`. Empty, `none`, `-`, `n/a`, `no` mean no treatment.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import ScheduleError

MELTING_C = 660.0  # pure Al; any step above this is a typo, not a heat treatment

_TEMP_UNITS = {"c": "C", "°c": "C", "ºc": "C", "degc": "C", "deg c": "C", "°": "C", "f": "F", "°f": "F",
               "ºf": "F", "degf": "F", "k": "K"}
_TIME_UNITS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0, "min": 60.0, "mins": 60.0,
               "minute": 60.0, "minutes": 60.0, "'": 60.0, "m": 60.0, "h": 3600.0, "hr": 3600.0,
               "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0, "d": 86400.0, "day": 86400.0,
               "days": 86400.0}
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
        temp = bare.pop(0)          # bare pair: temperature first
    if time is None and bare:
        time = bare.pop(0)          # bare number = seconds
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


def features(steps: list[Step], prefix: str, ambient_C: float = 25.0,
             threshold_C: float | None = None) -> dict[str, float]:
    """Numeric features of one schedule. No treatment means ambient temperature and zero time."""
    total = sum(s.time_s for s in steps)
    out = {
        f"{prefix}_steps": float(len(steps)),
        f"{prefix}_time_total_s": float(total),
        f"{prefix}_temp_max_C": max((s.temp_C for s in steps), default=ambient_C),
        f"{prefix}_T_time_weighted_C": (sum(s.temp_C * s.time_s for s in steps) / total) if total else ambient_C,
    }
    if threshold_C is not None:
        out[f"{prefix}_time_at_ge_{threshold_C:g}C_s"] = float(
            sum(s.time_s for s in steps if s.temp_C >= threshold_C))
    return out


def time_at_or_above(steps: list[Step], temp_C: float) -> float:
    return float(sum(s.time_s for s in steps if s.temp_C >= temp_C))
