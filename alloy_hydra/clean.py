"""Phase 1 cleaning: raw data cards -> BASE_MASTER (+ rejects and an audit report), schema-driven.

Format mistakes (a word in a number cell, an unreadable schedule) stop the run with a DataError naming the
file, row and column. Value-level problems (YS > UTS, a composition outside the chemistry window, an exact
duplicate) reject the row with a reason; rows in = rows kept + rows rejected, always.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schedule
from .errors import ConfigError, DataError, ScheduleError
from .schedule import BadRecrystType, schedule_block, step_arrays
from .schema import COMPOSITION_GROUP_PREFIX, GROUP_COL, RECRYST_TYPES, ROW_COL, TARGETS

log = logging.getLogger(__name__)

_NUM_UNIT = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Zµμ\"%]*)\s*$")
_UNITS = {
    "length": {"": None, "mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4, "inch": 25.4, '"': 25.4},
    "grain": {"": None, "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "mm": 1000.0, "nm": 1e-3},
    "percent": {"": None, "%": 1.0},
    "plain": {"": None},
}
_BALANCE_WORDS = {"bal", "bal.", "balance", "rem", "rem.", "remainder"}
_MISSING_WORDS = {"", "-", "--", "n/a", "na", "nan", "none", "null"}


@dataclass
class CleanResult:
    master: pd.DataFrame
    rejects: pd.DataFrame
    report: dict = field(default_factory=dict)


def is_missing(text: str) -> bool:
    return text.strip().lower() in _MISSING_WORDS


def parse_number(text: str, kind: str = "plain", default_unit: str = "", *, file=None, row=None, column=None):
    """A number with an optional unit (`600 mm`, `23.6 in`, `45%`) in the canonical unit of its kind."""
    if is_missing(text):
        return np.nan
    m = _NUM_UNIT.match(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
    if not m:
        raise DataError("not a number", file=file, row=row, column=column, value=text)
    value, unit = float(m.group(1)), (m.group(2) or default_unit).strip()
    table = _UNITS[kind]
    factor = table.get(unit, table.get(unit.lower()))
    if unit and factor is None and unit not in table:
        raise DataError(
            f"unknown unit {unit!r} (expected one of {sorted(k for k in table if k)})",
            file=file,
            row=row,
            column=column,
            value=text,
        )
    return value * (factor or 1.0)


def _element_values(raw: pd.DataFrame, data, source, scale: float, limit_rule: float, counts: dict) -> np.ndarray:
    """The element cells as wt%: blank = 0, '<x' = x times the detection-limit rule; counts both."""
    values = np.zeros((len(raw), len(data.composition_columns)))
    rows = raw[ROW_COL].to_numpy()
    for j, col in enumerate(data.composition_columns.values()):
        for i, text in enumerate(raw[col].to_numpy()):
            t = text.strip()
            if is_missing(t):
                counts["blank_as_zero"] += 1
                continue
            if t[0] in "<≤":
                counts["below_detection_limit"] += 1
                t, factor = t[1:].lstrip("="), limit_rule
            else:
                factor = 1.0
            try:
                values[i, j] = float(t) * factor * scale
            except ValueError:
                raise DataError(
                    "composition is not a number", file=source, row=int(rows[i]), column=col, value=text
                ) from None
    return values


def _given_balance(raw: pd.DataFrame, data, source, scale: float) -> pd.Series:
    """The balance element as written, in wt% (NaN where the card says 'bal.' or nothing)."""
    bal = data.balance_element
    given = pd.Series(np.nan, index=raw.index)
    if not data.balance_column:
        return given
    rows = raw[ROW_COL].to_numpy()
    for i, text in enumerate(raw[data.balance_column].to_numpy()):
        t = text.strip().lower()
        if t in _BALANCE_WORDS or is_missing(t):
            continue
        try:
            given.iloc[i] = float(t.lstrip("≥>=")) * scale
        except ValueError:
            raise DataError(
                f"{bal} must be a number or 'bal'",
                file=source,
                row=int(rows[i]),
                column=data.balance_column,
                value=text,
            ) from None
    if scale == 1.0 and given.notna().sum() >= 3 and (given.dropna() <= 1.0).mean() > 0.9:
        raise DataError(
            f"{bal} values are <= 1: these look like mass fractions; set data.composition_unit=fraction",
            file=source,
            column=data.balance_column,
        )
    return given


def _composition(raw: pd.DataFrame, data, source) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Parse element columns to wt%, Al = balance. Returns (wt%, raw strings, counters)."""
    scale = 100.0 if data.composition_unit == "fraction" else 1.0
    if data.composition_unit not in ("wt%", "fraction"):
        raise ConfigError(f"data.composition_unit must be 'wt%' or 'fraction', not {data.composition_unit!r}")
    limit_rule = {"zero": 0.0, "half": 0.5, "limit": 1.0}.get(data.detection_limit)
    if limit_rule is None:
        raise ConfigError(f"data.detection_limit must be zero, half or limit, not {data.detection_limit!r}")
    counts = {"blank_as_zero": 0, "below_detection_limit": 0}
    values = _element_values(raw, data, source, scale, limit_rule, counts)
    comp = pd.DataFrame(values, columns=list(data.composition_columns), index=raw.index)
    raws = pd.DataFrame({f"{el}_RAW": raw[col] for el, col in data.composition_columns.items()}, index=raw.index)
    bal = data.balance_element
    if data.balance_column:
        raws[f"{bal}_RAW"] = raw[data.balance_column]
    given = _given_balance(raw, data, source, scale)
    additions = comp.sum(axis=1)
    comp[bal] = 100.0 - additions
    rows = raw[ROW_COL].to_numpy()
    counts["balance_recomputed"] = int(((given - comp[bal]).abs() > 1e-9).sum())
    off = ((given + additions - 100.0).abs() > 0.05).to_numpy()
    counts["sum_given_off_by_more_than_tol"] = int(off.sum())
    counts["sum_given_off_rows"] = {  # row -> the sum as written (given balance + the other elements)
        int(rows[i]): round(float(given.iloc[i] + additions.iloc[i]), 3) for i in np.flatnonzero(off)
    }
    return comp, raws, counts


def _schedules(raw: pd.DataFrame, data, cleaning, source, numbers: dict) -> tuple[pd.DataFrame, dict]:
    """Parse every schedule of every row (errors name the cell), then derive features with schedule_block."""
    rows = raw[ROW_COL].to_numpy()
    steps_by, written_by = {}, {}
    for name, spec in data.schedules.items():
        parsed = []
        for i in range(len(raw)):
            row = int(rows[i])
            if spec.column:
                text = raw[spec.column].iat[i]
                try:
                    parsed.append(schedule.parse(text))
                except ScheduleError as err:
                    raise DataError(
                        f"unparsable schedule: {err}", file=source, row=row, column=spec.column, value=text
                    ) from None
                continue
            temp = parse_number(raw[spec.temp_column].iat[i], file=source, row=row, column=spec.temp_column)
            temp = schedule._to_celsius(temp, spec.temp_unit.upper().lstrip("°")) if np.isfinite(temp) else temp
            time = np.nan  # only the temperature is known
            if spec.time_column:
                time = (
                    parse_number(raw[spec.time_column].iat[i], file=source, row=row, column=spec.time_column)
                    * schedule._TIME_UNITS[spec.time_unit]
                )
            done = (
                np.isfinite(temp)
                and temp > spec.none_at_or_below_C
                and (not spec.time_column or (np.isfinite(time) and time > 0))
            )
            parsed.append([schedule.Step(temp, time)] if done else [])
        steps_by[name] = parsed
        written_by[name] = list(raw[spec.type_column]) if spec.type_column else None
    try:
        out = schedule_block(
            {n: step_arrays(v) for n, v in steps_by.items()}, written_by, data, cleaning, raw.index, numbers=numbers
        )
    except BadRecrystType as bad:
        spec = data.schedules[bad.name]
        raise DataError(
            f"unknown recryst type; expected one of {list(RECRYST_TYPES)}",
            file=source,
            row=int(rows[bad.i]),
            column=spec.type_column,
            value=bad.written,
        ) from None
    counts = {f"{name}_treated_rows": int((out[f"{name}_steps"] > 0).sum()) for name in data.schedules}
    return out, counts


def composition_key(comp: pd.DataFrame) -> pd.Series:
    """Group key of identical composition (elements rounded to 0.01 wt%)."""
    rounded = comp.round(2).astype(str)
    return COMPOSITION_GROUP_PREFIX + rounded.apply(lambda r: "|".join(r.to_numpy()), axis=1)


def window_violations(comp: pd.DataFrame, window, balance: str = "Al") -> pd.Series:
    """Per row, a '; '-joined list of chemistry-window violations ('' = inside)."""
    msgs = pd.Series("", index=comp.index)
    for el in comp.columns:
        if el == balance:
            continue
        hi = window.max.get(el, window.unlisted_max)
        lo = window.min.get(el)
        if hi is not None:
            bad = comp[el] > hi + 1e-9
            msgs[bad] += comp.loc[bad, el].map(lambda v, el=el, hi=hi: f"{el}={v:g}>{hi:g}; ")
        if lo is not None:
            bad = comp[el] < lo - 1e-9
            msgs[bad] += comp.loc[bad, el].map(lambda v, el=el, lo=lo: f"{el}={v:g}<{lo:g}; ")
    return msgs.str.rstrip("; ")


def required_columns(data) -> list[str]:
    cols = list(data.id_columns) + list(data.group_columns) + list(data.group_by_composition_if)
    cols += list(data.composition_columns.values()) + list(data.categoricals.values())
    cols += [s.column for s in data.numeric.values()] + list(data.targets.values()) + list(data.carry_columns)
    if data.balance_column:
        cols.append(data.balance_column)
    for s in data.schedules.values():
        cols += [c for c in (s.column, s.temp_column, s.time_column, s.type_column) if c]
    return list(dict.fromkeys(cols))


def _check_columns(raw: pd.DataFrame, data, source) -> None:
    missing = [c for c in required_columns(data) if c not in raw.columns]
    if missing:  # all of them at once: a file from another template lacks several
        what = "required column missing" if len(missing) == 1 else f"{len(missing)} required columns missing"
        raise DataError(what, file=source, row=1, column=", ".join(missing))
    unknown_targets = [t for t in data.targets if t not in TARGETS]
    if unknown_targets:
        raise ConfigError(f"data.targets has {unknown_targets}; known targets are {list(TARGETS)}")


def _assemble(raw: pd.DataFrame, data, comp, comp_raw, numbers: dict, sched: pd.DataFrame, source) -> pd.DataFrame:
    """Every parsed column in card order: row, ids, composition (+ raw strings), categoricals, numbers,
    schedules (+ raw strings), targets, carried columns."""
    rows = raw[ROW_COL].to_numpy()
    master = pd.DataFrame({ROW_COL: raw[ROW_COL]})
    for col in data.id_columns:
        master[col] = raw[col]
    master = pd.concat([master, comp, comp_raw], axis=1)
    for name, col in data.categoricals.items():
        master[name] = raw[col].where(raw[col].str.strip() != "", "unknown")
    for name, values in numbers.items():
        master[name] = values
    for name, spec in data.schedules.items():
        if spec.column:
            sched.insert(list(sched.columns).index(f"{name}_schedule") + 1, f"{name}_schedule_RAW", raw[spec.column])
    master = pd.concat([master, sched], axis=1)
    for name, col in data.targets.items():
        master[name] = [parse_number(t, file=source, row=int(r), column=col) for t, r in zip(raw[col], rows)]
    for col in data.carry_columns:
        master[col] = raw[col]
    return master


def _group_key(raw: pd.DataFrame, data, comp: pd.DataFrame) -> pd.Series:
    """The card's class (data.group_columns), or identical composition where the config says so."""
    key = (
        raw[list(data.group_columns)].astype(str).agg(" | ".join, axis=1)
        if data.group_columns
        else composition_key(comp)
    )
    for col, value in data.group_by_composition_if.items():
        key = key.where(~(raw[col].str.strip() == value), composition_key(comp))
    return key


def _reject_reasons(
    raw: pd.DataFrame, master: pd.DataFrame, comp: pd.DataFrame, data, window, cleaning
) -> tuple[pd.Series, int]:
    """Value-level integrity: the reasons each row is rejected for ([] = kept), and the window's count."""
    reasons = pd.Series([[] for _ in range(len(master))], index=master.index, dtype=object)

    def flag(mask, text):
        for i in master.index[mask]:
            reasons[i].append(text if isinstance(text, str) else text[i])

    additions = comp.drop(columns=[data.balance_element]).sum(axis=1)
    flag(additions > 100.0 + cleaning.composition_sum_tol, "composition: additions sum above 100 wt%")
    flag((comp.drop(columns=[data.balance_element]) < 0).any(axis=1), "composition: negative element")
    viol = window_violations(comp, window, data.balance_element)
    flag(viol != "", "outside chem window " + window.name + ": " + viol)
    if "YS" in master and "UTS" in master:
        flag(master["YS"] > master["UTS"], "integrity: YS > UTS")
    for name in data.numeric:
        flag(master[name] < 0, f"negative {name}")
    dup_cols = [c for c in raw.columns if c not in (ROW_COL, *data.id_columns)]
    if data.drop_exact_duplicates:
        dup = raw.duplicated(subset=dup_cols, keep="first")
        first = raw.drop_duplicates(subset=dup_cols, keep="first").set_index(dup_cols)[ROW_COL]
        if dup.any():
            firsts = raw.loc[dup, dup_cols].apply(lambda r: int(first.loc[tuple(r)]), axis=1)
            flag(dup, "duplicate of row " + firsts.astype(str))
    return reasons, int((viol != "").sum())


def _clamp_uniform_el(master: pd.DataFrame) -> list[dict]:
    """Uniform elongation cannot exceed fracture elongation (a value typed into the wrong column): clamped,
    each change recorded."""
    changes = []
    if "UniformEL" in master and "FractureEL" in master:
        over = master["UniformEL"] > master["FractureEL"]
        for i in master.index[over]:
            changes.append(
                {
                    ROW_COL: int(master.at[i, ROW_COL]),
                    "column": "UniformEL",
                    "from": float(master.at[i, "UniformEL"]),
                    "to": float(master.at[i, "FractureEL"]),
                    "rule": "UniformEL <= FractureEL",
                }
            )
        master.loc[over, "UniformEL"] = master.loc[over, "FractureEL"]
    return changes


BAD_CELLS_LIMIT = 50  # bad cells named in one error; beyond it "... and more"


def clean(raw: pd.DataFrame, data, window, cleaning, source="<cards>", bad_cells: str = "raise") -> CleanResult:
    """Clean raw cards (strings, with `source_row`) into BASE_MASTER; never drops a row silently. Every bad cell
    is found in one pass (up to BAD_CELLS_LIMIT): bad_cells="raise" (a run: fix the file) raises one DataError
    naming each by row, column and value; "reject" (a prediction: score the good rows) rejects each row that has
    one, with its reasons."""
    _check_columns(raw, data, source)
    problems, tried = [], raw
    while True:  # each bad cell blanked in a copy and the cleaning tried again, to find the next one
        try:
            result = _clean(tried, data, window, cleaning, source)
            break
        except DataError as err:
            if (
                err.row is None
                or err.column not in raw.columns
                or (err.row, err.column) in [(p.row, p.column) for p in problems]
            ):
                raise
            problems.append(err)
            if len(problems) > BAD_CELLS_LIMIT:
                break
            tried = tried.copy() if tried is raw else tried
            tried.loc[tried[ROW_COL] == err.row, err.column] = ""
    if not problems:
        return result
    if bad_cells != "reject" or len(problems) > BAD_CELLS_LIMIT:
        shown = problems[:BAD_CELLS_LIMIT]
        more = "\n  ... and more" if len(problems) > BAD_CELLS_LIMIT else ""
        cells = "\n".join(f"  row {p.row}, column {p.column!r}: {p.reason} (value {p.value!r})" for p in shown)
        raise DataError(
            f"{len(shown)}{'+' if more else ''} bad cells; fix them and run again:\n{cells}{more}", file=source
        )
    bad = {}
    for p in problems:
        bad.setdefault(p.row, []).append(f"bad cell: column {p.column!r}: {p.reason} (value {p.value!r})")
    hit = raw[ROW_COL].isin(list(bad))
    result = _clean(raw.loc[~hit], data, window, cleaning, source)
    extra = raw.loc[hit].copy()
    extra.insert(1, "reason", extra[ROW_COL].map(lambda r: "; ".join(bad[r])))
    rejects = pd.concat([result.rejects, extra]).sort_values(ROW_COL, kind="stable")
    report = dict(result.report)
    report.update(rows_in=int(len(raw)), rows_rejected=int(len(rejects)))
    report["reject_reasons"] = {**report["reject_reasons"], "bad cell": int(hit.sum())}
    assert report["rows_in"] == report["rows_kept"] + report["rows_rejected"]
    return CleanResult(master=result.master, rejects=rejects, report=report)


def _numeric(raw: pd.DataFrame, data, source) -> dict[str, np.ndarray]:
    """Every configured numeric column parsed in its unit; a bad cell names file, row and column."""
    rows = raw[ROW_COL].to_numpy()
    return {
        name: np.array(
            [
                parse_number(t, spec.kind, spec.unit, file=source, row=int(r), column=spec.column)
                for t, r in zip(raw[spec.column], rows)
            ],
            dtype=float,
        )
        for name, spec in data.numeric.items()
    }


def _sum_off(master: pd.DataFrame, reasons: pd.Series, off: dict, data, cleaning, source) -> None:
    """Rows whose given elements sum off 100 %: rejected, or warned about and recomputed as the balance."""
    if not off:
        return
    shown = ", ".join(f"row {r} ({v:g} %)" for r, v in list(off.items())[:10]) + (" ..." if len(off) > 10 else "")
    if cleaning.balance_mismatch == "reject":
        for i in master.index[master[ROW_COL].isin(list(off))]:
            v = off[int(master.at[i, ROW_COL])]
            reasons[i].append(f"composition: given elements sum to {v:g} wt%, not 100")
        log.warning("%s: %d rows whose given composition sums off 100 %% rejected: %s", source, len(off), shown)
    else:
        log.warning(
            "%s: %d rows whose given composition sums off 100 %%: %s recomputed as the balance "
            "(cleaning.balance_mismatch=reject refuses them): %s",
            source,
            len(off),
            data.balance_element,
            shown,
        )


def _report(raw, master, reasons: pd.Series, counts: dict, data, window, source) -> dict:
    """The cleaning report: rows in = kept + rejected, reasons counted, composition and schedule counts.
    `counts`: the elements, the composition and schedule counters, rows outside the window, clamped values."""
    elements, changes, rejected = counts["elements"], counts["changes"], reasons.map(len) > 0
    sums = master[elements].sum(axis=1)
    reason_counts = (
        pd.Series(
            [r.split(":")[0] if not r.startswith("duplicate") else "duplicate" for rs in reasons[rejected] for r in rs]
        )
        .value_counts()
        .to_dict()
    )
    report = {
        "source": str(source),
        "rows_in": int(len(raw)),
        "rows_kept": int(len(master)),
        "rows_rejected": int(rejected.sum()),
        "reject_reasons": {str(k): int(v) for k, v in reason_counts.items()},
        "chem_window": window.name,
        "rows_outside_window": counts["window"],
        "composition": {
            **counts["composition"],
            "unit_in_file": data.composition_unit,
            "sum_min": float(sums.min()) if len(master) else None,
            "sum_max": float(sums.max()) if len(master) else None,
            "negatives": int((master[elements] < 0).sum().sum()),
        },
        "schedules": counts["schedules"],
        "integrity": {
            "ys_gt_uts_dropped": int(sum("integrity: YS > UTS" in r for r in reasons)),
            "uniform_el_clamped": len(changes),
        },
        "changes": changes,
        "labels": {t: int(master[t].notna().sum()) for t in data.targets},
        "groups": int(master[GROUP_COL].nunique()),
    }
    assert report["rows_in"] == report["rows_kept"] + report["rows_rejected"]
    return report


def _clean(raw: pd.DataFrame, data, window, cleaning, source) -> CleanResult:
    comp, comp_raw, comp_counts = _composition(raw, data, source)
    numbers = _numeric(raw, data, source)
    sched, sched_counts = _schedules(raw, data, cleaning, source, numbers)
    master = _assemble(raw, data, comp, comp_raw, numbers, sched, source)
    elements = list(comp.columns)
    master.insert(1, GROUP_COL, _group_key(raw, data, comp[elements]).to_numpy())
    reasons, n_window = _reject_reasons(raw, master, comp, data, window, cleaning)
    _sum_off(master, reasons, comp_counts["sum_given_off_rows"], data, cleaning, source)
    rejected = reasons.map(len) > 0
    rejects = raw.loc[rejected].copy()
    rejects.insert(1, "reason", reasons[rejected].map("; ".join))
    master = master.loc[~rejected].reset_index(drop=True)
    changes = _clamp_uniform_el(master)
    sums = master[elements].sum(axis=1)
    if len(master) and (sums - 100.0).abs().max() > cleaning.composition_sum_tol:
        raise AssertionError("composition sum outside tolerance after balancing")  # a bug, not a data error
    counts = dict(elements=elements, composition=comp_counts, schedules=sched_counts, window=n_window, changes=changes)
    report = _report(raw, master, reasons, counts, data, window, source)
    if len(raw) and n_window / len(raw) > cleaning.window_warn_fraction:
        log.warning(
            "chem window %r rejected %d of %d rows; for a wide dataset use chem_window=wrought",
            window.name,
            n_window,
            len(raw),
        )
    return CleanResult(master=master, rejects=rejects, report=report)


def make_view(master: pd.DataFrame, target) -> tuple[pd.DataFrame, dict]:
    """The target's label-complete view, with gentle clipping to the target's physical range."""
    if target.name not in master:
        raise ConfigError(f"this dataset has no {target.name} column")
    view = master.loc[master[target.name].notna()].reset_index(drop=True)
    lo, hi = target.clip
    low, high = view[target.name] < lo, view[target.name] > hi
    clipped = [
        {ROW_COL: int(r), "from": float(v)}
        for r, v in zip(view.loc[low | high, ROW_COL], view.loc[low | high, target.name])
    ]
    view[target.name] = view[target.name].clip(lo, hi)
    return view, {
        "target": target.name,
        "clip": [lo, hi],
        "view_rows": int(len(view)),
        "clipped_low": int(low.sum()),
        "clipped_high": int(high.sum()),
        "clipped": clipped,
    }


def coverage(master: pd.DataFrame, targets) -> pd.DataFrame:
    """Label density per class (group): rows, labelled rows and density for every target."""
    g = master.groupby(GROUP_COL, sort=True)
    out = pd.DataFrame({"rows": g.size()})
    for t in targets:
        out[f"{t}_labels"] = g[t].count()
        out[f"{t}_density"] = (out[f"{t}_labels"] / out["rows"]).round(4)
    return out.reset_index()


def labels_needed(master: pd.DataFrame, targets, id_columns) -> pd.DataFrame:
    """One row per (card, missing label): which cards lack which labels."""
    parts = []
    for t in targets:
        miss = master.loc[master[t].isna(), [ROW_COL, GROUP_COL, *id_columns]].copy()
        miss["missing_label"] = t
        parts.append(miss)
    cols = [ROW_COL, GROUP_COL, *id_columns, "missing_label"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def data_path(data, data_dir: str | None = None) -> Path:
    """The cards file of a data config (config.data_file; the embedded demo cards by default); `data_dir`:
    paths.data_dir, where public datasets are cached."""
    from .config import data_file
    from .demo import demo_path

    return data_file(data, data_dir) or demo_path()


def clean_for_prediction(raw: pd.DataFrame, cfg, source="cards", labels: bool = True):
    """The cards cleaned with a model's own data schema and rules, measured labels optional. labels=False (a
    prediction): the label columns are left out, so a card is never refused over a label that plays no part in
    predicting it (YS > UTS, a unit typo in a label); the monitor and the campaign keep them (True)."""
    present = {k: v for k, v in cfg.data.targets.items() if v in raw.columns}
    data = dataclasses.replace(cfg.data, targets=present if labels else {}, drop_exact_duplicates=False)
    cards = raw if labels else raw.drop(columns=list(present.values()))
    # a prediction scores the good rows and rejects each row with a bad cell, with its reason
    return clean(cards, data, cfg.chem_window, cfg.cleaning, source=source, bad_cells="raise" if labels else "reject")
