"""Cards <-> recipe tables. A recipe table holds what a card *is* (element contents, process numbers,
categoricals, schedule steps as temperature + log10 time, targets); `decode` turns any recipe table back into
cleaned cards through schedule.schedule_block, the same derivation cleaning uses. Generators synthesise recipe
tables and the designer searches over them, so a schedule string always matches its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import schedule
from .schedule import has_times, infer_recryst_type, schedule_columns
from .schema import RECRYST_TYPES


@dataclass
class Schema:
    elements: list[str]  # additions (the balance element is derived)
    balance: str
    numeric: list[str]  # process numbers (mm, %, µm)
    categorical: list[str]  # card categoricals + recryst types
    schedules: dict[str, int]  # schedule -> max number of steps
    targets: list[str]
    strata: dict[str, list[str]] = field(default_factory=dict)  # schedule param -> columns defining its stratum

    @property
    def step_columns(self) -> list[str]:
        cols = []
        for name, n in self.schedules.items():
            for i in range(1, n + 1):
                cols += [f"{name}_T{i}", f"{name}_lt{i}"]
        return cols

    @property
    def count_columns(self) -> list[str]:
        return [f"{name}_n" for name in self.schedules]

    @property
    def continuous(self) -> list[str]:
        """Numeric columns a generator models as continuous (targets last)."""
        return self.elements + self.numeric + self.step_columns + self.targets

    @property
    def discrete(self) -> list[str]:
        return self.categorical + self.count_columns


class RecipeSpace:
    """Standardised recipe space of the real train rows (for near-duplicates, DCR and class assignment)."""

    def __init__(self, real: pd.DataFrame, schema: Schema, columns: list[str] | None = None):
        self.schema = schema
        self.columns = list(schema.continuous if columns is None else columns)
        cont = real[self.columns].to_numpy(float)
        seen = np.isfinite(cont).any(axis=0)  # a step no card of these has (all NaN) stays at 0 / 1
        self.mu, sd = np.zeros(cont.shape[1]), np.ones(cont.shape[1])
        self.mu[seen], sd[seen] = np.nanmean(cont[:, seen], axis=0), np.nanstd(cont[:, seen], axis=0)
        self.sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.levels = {c: sorted(real[c].astype(str).unique()) for c in schema.categorical}

    def __call__(self, table: pd.DataFrame) -> np.ndarray:
        z = np.nan_to_num((table[self.columns].to_numpy(float) - self.mu) / self.sd)
        disc = [
            (table[c].astype(str).to_numpy()[:, None] == np.asarray(lv)[None, :]).astype(float)
            for c, lv in self.levels.items()
        ]
        return np.hstack([z, *disc]) if disc else z


def _steps_of(cards: pd.DataFrame, name: str, spec) -> list[list[schedule.Step]]:
    if has_times(spec):
        return [schedule.parse(s) for s in cards[f"{name}_schedule"].fillna("")]
    temps, n = cards[f"{name}_temp_max_C"].to_numpy(float), cards[f"{name}_steps"].to_numpy(float)
    return [[schedule.Step(t, np.nan)] if k > 0 else [] for t, k in zip(temps, n)]


def schema_of(cards: pd.DataFrame, data) -> Schema:
    cats = list(data.categoricals) + [f"{n}_type" for n, s in data.schedules.items() if s.kind == "recryst"]
    steps = {n: max((len(s) for s in _steps_of(cards, n, spec)), default=0) for n, spec in data.schedules.items()}
    strata = {}
    for name, n in steps.items():
        key = [f"{name}_n"] + ([f"{name}_type"] if f"{name}_type" in cats else [])
        for i in range(1, n + 1):
            strata[f"{name}_T{i}"] = strata[f"{name}_lt{i}"] = key
    return Schema(
        elements=list(data.composition_columns),
        balance=data.balance_element,
        numeric=list(data.numeric),
        categorical=cats,
        schedules=steps,
        targets=[t for t in data.targets if t in cards],
        strata=strata,
    )


def encode(cards: pd.DataFrame, schema: Schema, data) -> pd.DataFrame:
    """Cleaned cards -> recipe table (no ids, no derived features)."""
    out = pd.DataFrame(index=cards.index)
    for col in schema.elements + schema.numeric + schema.categorical:
        out[col] = cards[col].to_numpy()
    for name, n in schema.schedules.items():
        steps = _steps_of(cards, name, data.schedules[name])
        out[f"{name}_n"] = [len(s) for s in steps]
        for i in range(n):
            out[f"{name}_T{i + 1}"] = [s[i].temp_C if len(s) > i else np.nan for s in steps]
            out[f"{name}_lt{i + 1}"] = [
                np.log10(s[i].time_s) if len(s) > i and np.isfinite(s[i].time_s) else np.nan for s in steps
            ]
    for t in schema.targets:
        out[t] = cards[t].to_numpy(dtype=float)
    return out


def decode(
    table: pd.DataFrame, schema: Schema, data, cleaning, strings: bool = True, frame: bool = True
) -> tuple[pd.DataFrame | dict, dict]:
    """Recipe table -> cleaned cards (Al balance, canonical schedules, thermal features).

    Steps are read in order while both temperature and time are present, up to `<s>_n`; a recryst type that
    contradicts its schedule is re-inferred. Both repairs are counted."""
    index = table.index
    cards = {}  # plain arrays; one DataFrame at the end (decode runs once per design generation)
    comp = table[schema.elements].to_numpy(dtype=float)
    for j, el in enumerate(schema.elements):
        cards[el] = comp[:, j]
    cards[schema.balance] = 100.0 - comp.sum(axis=1)
    for col in schema.numeric:
        cards[col] = table[col].to_numpy(dtype=float)
    for col in data.categoricals:
        cards[col] = table[col].astype(str).to_numpy()
    repairs = {"schedule_steps": 0, "recryst_type": 0}
    arrays_by, written_by = {}, {}
    for name, m in schema.schedules.items():
        spec = data.schedules[name]
        # without a step count (SDV models step presence through NaNs), take the leading complete steps
        want = table[f"{name}_n"].to_numpy(float) if f"{name}_n" in table else np.full(len(table), float(m))
        temp, time = np.full((len(table), m), np.nan), np.full((len(table), m), np.nan)
        valid = np.ones(len(table), bool)
        for i in range(1, m + 1):
            t = table[f"{name}_T{i}"].to_numpy(float)
            lt = table[f"{name}_lt{i}"].to_numpy(float) if f"{name}_lt{i}" in table else np.full(len(table), np.nan)
            valid &= (i <= want) & np.isfinite(t) & (np.isfinite(lt) | (not has_times(spec)))
            temp[:, i - 1] = np.where(valid, t, np.nan)
            secs = np.round(10.0 ** np.where(np.isfinite(lt), lt, 0.0), 6)  # 12900, not 12899.999999999995
            time[:, i - 1] = np.where(valid & np.isfinite(lt), secs, np.nan)
        if f"{name}_n" in table:
            repairs["schedule_steps"] += int((np.isfinite(temp).sum(axis=1) != np.nan_to_num(want)).sum())
        arrays_by[name] = (temp, time)
        if spec.kind == "recryst":
            w = table[f"{name}_type"].astype(str).to_numpy() if f"{name}_type" in table else np.full(len(table), "")
            inferred = infer_recryst_type(temp, time, cleaning)
            has = np.isfinite(temp).any(axis=1)
            ok = (
                np.isin(w, RECRYST_TYPES)
                & ((w == "none") == ~has)
                & ~((w == "flash") & (inferred == "batch"))
                & ~((w == "batch") & (inferred == "flash"))
            )
            repairs["recryst_type"] += int((~ok).sum())
            written_by[name] = np.where(ok, w, inferred)
    cards.update(
        schedule_columns(
            arrays_by, written_by, data, cleaning, strings=strings, numbers={c: cards[c] for c in schema.numeric}
        )
    )
    for t in schema.targets:
        cards[t] = table[t].to_numpy(dtype=float) if t in table else np.full(len(table), np.nan)
    return (pd.DataFrame(cards, index=index) if frame else cards), repairs  # dict: the design search loop


def rederive(cards: pd.DataFrame, data, cleaning) -> pd.DataFrame:
    """Cleaned cards whose recipe was edited (e.g. a nudged cold reduction) -> the same cards with every derived
    column (thermal features, adequacy, dose, retained strain) recomputed by the cleaning code."""
    schema = schema_of(cards, data)
    return decode(encode(cards, schema, data), schema, data, cleaning, strings=False)[0]
