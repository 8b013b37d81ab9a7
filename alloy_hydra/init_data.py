"""A starting data config from a lab's own card file, so nobody copies the demo's (and its simulator).

    python -m alloy_hydra.init_data cards.csv [--name mylab] [--out conf/data/mylab.yaml] [--force]

Reads the header and the cells, and guesses what each column is: element columns (wt% or mass fractions) and the
balance, targets (yield / tensile strength, elongations, YPE), schedules (a column of strings such as
`540C/5h + 490 °C / 24 h`, or a temperature column with a time column), process numbers with their kind (a
thickness in mm, a rolling reduction in %, a grain size in µm), categoricals (a few repeated words), ids and the
alloy name to group by. It writes conf/data/<name>.yaml with a comment per guess, and lists every column it could
not place; read it, fix what it guessed wrong, then `python run.py data=<name> data.path=cards.csv`. It never
sets `ground_truth` (the demo's simulator knows nothing about a lab's alloys).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from .errors import AlloyHydraError
from .io import read_cards
from .schema import ROW_COL

ELEMENTS = (
    "Si Fe Cu Mn Mg Cr Ni Zn Ti Zr Sc Li Ag V B Be Bi Pb Sn Ga Cd Co Er Eu Ce La Sr Ca Hf Y Nb Mo Na P Sb Ge In Other"
).split()
TARGETS = {  # property -> patterns of a column name (lower case)
    "YS": (r"\bys\b", r"yield", r"\byts\b", r"rp0\.?2", r"proof"),
    "UTS": (r"\buts\b", r"tensile strength", r"\brm\b", r"ultimate"),
    "UniformEL": (r"uniform", r"\bag\b", r"\bue\b"),
    "FractureEL": (r"fracture el", r"elongation", r"\bel\b", r"\ba\s*\(%\)", r"\ba50\b", r"\ba5\b"),
    "YPE": (r"\bype\b", r"yield point elongation", r"l[uü]ders"),
}
UNITS = {"length": "mm", "grain": "um"}  # the unit a guessed numeric column is read in
SCHEDULE_WORDS = ("homog", "anneal", "recryst", "solution", "ageing", "aging", "temper", "heat")


def _name(column: str) -> str:
    """A column name as a config key: lower case, words joined by _."""
    return re.sub(r"[^0-9a-z]+", "_", column.lower()).strip("_") or "col"


def canonical(column: str, kind: str) -> str:
    """The name the cleaning rules and the library of forms know a process number by (cold_reduction_pct feeds the
    recrystallisation rule's strain), else the column's own name with its unit's suffix."""
    low = column.lower()
    if kind == "percent" and "reduction" in low:
        return (
            "cold_reduction_pct" if "cold" in low else "hot_reduction_pct" if "hot" in low else f"{_name(column)}_pct"
        )
    if kind == "grain":
        return "grain_size_um"
    if kind == "length" and "thick" in low:
        return "ingot_thickness_mm" if "ingot" in low else f"{_name(column)}_mm"
    return _name(column)


def _numbers(values: pd.Series) -> pd.Series:
    """Each cell as a number where the whole cell is one (a detection limit `<0.01` or a unit `19.4 in` allowed)."""
    text = values.astype(str).str.strip().str.replace(",", ".", regex=False)
    found = text.str.extract(r"^[<≤>]?=?\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*(?:[a-zA-Z%°µ\"']{0,4}\.?)$")[0]
    return pd.to_numeric(found, errors="coerce")


def _mostly_numbers(values: pd.Series) -> bool:
    filled = values[values.astype(str).str.strip() != ""]
    return len(filled) > 0 and _numbers(filled).notna().mean() >= 0.9


def _looks_like_schedule(values: pd.Series) -> bool:
    """Most filled cells read as thermal schedules by the cleaning's own parser (and are not plain numbers)."""
    from .schedule import parse

    filled = values[values.astype(str).str.strip() != ""].astype(str)
    if not len(filled) or _numbers(filled).notna().mean() > 0.5:
        return False
    ok = 0
    for text in filled:
        try:
            ok += bool(parse(text))
        except Exception:  # noqa: BLE001 - any cell the parser refuses counts as not a schedule
            pass
    return ok / len(filled) >= 0.6


def _composition(cards: pd.DataFrame, cols: list[str], cfg: dict, notes: dict, placed: set) -> None:
    """Element columns (a symbol leading a numeric header), their unit, and the Al balance column."""
    elements = {}
    for c in cols:
        m = re.match(r"^\s*(Other|[A-Z][a-z]?)\b", c)
        el = m.group(1) if m and m.group(1) in (*ELEMENTS, "Al") and _mostly_numbers(cards[c]) else None
        if el and el not in elements:
            elements[el] = c
    elements.pop("Al", None)
    balance = next((c for c in cols if re.match(r"^\s*Al\b", c)), None)  # often "bal." or "Al (min.)": any cells
    if not elements:
        return
    cfg["composition_columns"] = elements
    placed |= set(elements.values())
    values = pd.DataFrame({e: _numbers(cards[c]).fillna(0) for e, c in elements.items()})
    fraction = values.sum(axis=1).median() <= 1.0 + 1e-6 and values.max().max() <= 1.0
    cfg["composition_unit"] = "fraction" if fraction else "wt%"
    notes["composition_unit"] = "the elements sum to about 1 per card" if fraction else "the elements are wt%"
    cfg["balance_element"] = "Al"
    if balance:
        cfg["balance_column"] = balance
        placed.add(balance)


def _targets(cards: pd.DataFrame, cols: list[str], placed: set) -> dict:
    """The first numeric column whose header matches each property's patterns."""
    targets = {}
    for c in cols:
        if c in placed or not _mostly_numbers(cards[c]):
            continue
        low = c.lower()
        for t, patterns in TARGETS.items():
            if t not in targets and any(re.search(p, low) for p in patterns):
                targets[t] = c
                placed.add(c)
                break
    return targets


def _schedules(cards: pd.DataFrame, cols: list[str], notes: dict, placed: set) -> dict:
    """Schedule-text columns, then temperature columns paired with the time column that shares their stem."""
    schedules = {}
    for c in cols:
        if c not in placed and _looks_like_schedule(cards[c]):
            low = c.lower()
            kind = "homog" if "homog" in low else "recryst" if re.search(r"recryst|final anneal", low) else None
            spec = {"column": c}
            if kind:
                spec["kind"] = kind
            schedules[_name(c).split("_")[0] or "schedule"] = spec
            placed.add(c)
    temps = [
        c for c in cols if c not in placed and re.search(r"temp|°c|\(c\)", c.lower()) and _mostly_numbers(cards[c])
    ]
    for c in temps:
        stem = re.sub(r"temp(erature)?|°c|\(c\)|[^a-z/ ]", " ", c.lower()).split()
        key = _name(stem[0]) if stem else _name(c)
        spec = {"temp_column": c, "none_at_or_below_C": 25}
        times = [
            t for t in cols if t not in placed and t != c and "time" in t.lower() and (not stem or stem[0] in t.lower())
        ]
        if times:
            spec["time_column"] = times[0]
            low = times[0].lower()
            spec["time_unit"] = "h" if re.search(r"\(h\)|\bh\b|hour", low) else "min" if "min" in low else "s"
            notes[f"schedules.{key}.time_unit"] = f"guessed from the header {times[0]!r}: check it"
            placed.add(times[0])
        schedules[key] = spec
        placed.add(c)
    return schedules


def _numeric_kind(header: str) -> str:
    low = header.lower()
    if "grain" in low:
        return "grain"
    if ("reduction" in low or "%" in low) and "el" not in low.split():
        return "percent"
    return "length" if re.search(r"thick|\(mm\)|gauge|width|length", low) else "plain"


def _the_rest(cards: pd.DataFrame, cols: list[str], placed: set) -> tuple[dict, dict, list, list]:
    """Every column not yet placed: an id, a numeric feature, a few-valued categorical, or carried as is."""
    numeric, categoricals, ids, carry = {}, {}, [], []
    for c in cols:
        if c in placed:
            continue
        v = cards[c].astype(str).str.strip()
        if re.search(r"\bid\b|card|sample|name|file|test_?no|\bno\b|number|specimen", c.lower()):
            ids.append(c)
        elif _mostly_numbers(cards[c]) and _numbers(cards[c]).nunique() > 1:
            kind = _numeric_kind(c)
            spec = {"column": c, "kind": kind}
            if kind in UNITS:
                spec["unit"] = UNITS[kind]
            numeric[canonical(c, kind)] = spec
        elif v.nunique() == len(v):
            ids.append(c)
        elif 1 < v.nunique() <= 20:  # a few repeated words; more (references, tempers) are carried
            categoricals[_name(c)] = c
        else:
            carry.append(c)
        placed.add(c)
    return numeric, categoricals, ids, carry


def guess(cards: pd.DataFrame) -> tuple[dict, dict, list[str]]:
    """(data config as a dict, a comment per key, the columns it could not place)."""
    cols = [c for c in cards.columns if c != ROW_COL]
    placed: set[str] = set()
    notes: dict[str, str] = {}
    cfg: dict = {}
    _composition(cards, cols, cfg, notes, placed)
    cfg["targets"] = _targets(cards, cols, placed)
    schedules = _schedules(cards, cols, notes, placed)
    if schedules:
        cfg["schedules"] = schedules
    numeric, categoricals, ids, carry = _the_rest(cards, cols, placed)
    group = next((c for c in cols if re.search(r"alloy|grade|designation", c.lower())), None)
    if group:
        cfg["group_columns"] = [group]
        notes["group_columns"] = "cards of one alloy are held out together; empty = group by identical composition"
        for where in (carry, ids):
            if group in where:
                where.remove(group)
        categoricals = {k: v for k, v in categoricals.items() if v != group}  # a group name is not a feature
        ids.insert(0, group)
    cfg["id_columns"] = ids[:3] or ([group] if group else [])
    for key, value in (("categoricals", categoricals), ("numeric", numeric), ("carry_columns", carry)):
        if value:
            cfg[key] = value
    unplaced = [c for c in cols if c not in placed and c not in cfg.get("id_columns", [])]
    return cfg, notes, unplaced + carry


def write(cfg: dict, notes: dict, unplaced: list, name: str, source: Path) -> str:
    """The config as YAML text with its comments: what was guessed, what to check, what was not placed."""
    import yaml

    body = {"name": name, "path": None, **cfg, "ground_truth": False}
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=118)
    head = [
        f"# A starting data config for {source.name}, written by `python -m alloy_hydra.init_data` from the file's",
        "# header and cells. Check every guess (units above all), then:",
        f"#   python run.py data={name} data.path={source}",
        "defaults:",
        "  - base_data",
        "  - _self_",
    ]
    tail = [f"# {k}: {v}" for k, v in notes.items()]
    if unplaced:
        tail.append(f"# not placed (carried or ignored; add them where they belong): {', '.join(unplaced)}")
    if "targets" not in cfg or not cfg["targets"]:
        tail.append("# no target column recognised: set targets: {YS: <column>, UTS: <column>, ...}")
    return "\n".join(head) + "\n" + text + ("\n".join(tail) + "\n" if tail else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.init_data", description=__doc__.splitlines()[0])
    ap.add_argument("cards")
    ap.add_argument("--name", default=None, help="the config's name (default: the file's stem)")
    ap.add_argument("--out", default=None, help="where to write it (default: conf/data/<name>.yaml)")
    ap.add_argument("--delimiter", default=",")
    ap.add_argument("--force", action="store_true", help="overwrite an existing file")
    a = ap.parse_args(argv)
    try:
        cards = read_cards(Path(a.cards), delimiter=a.delimiter)
    except AlloyHydraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    name = _name(a.name or Path(a.cards).stem)
    out = Path(a.out or Path(__file__).resolve().parents[1] / "conf" / "data" / f"{name}.yaml")
    if out.exists() and not a.force:
        print(f"error: {out} exists; pass --force to overwrite it or --name another", file=sys.stderr)
        return 2
    cfg, notes, unplaced = guess(cards)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(write(cfg, notes, unplaced, name, Path(a.cards)))
    found = ", ".join(f"{k}: {len(v)}" for k, v in cfg.items() if isinstance(v, (dict, list)) and v)
    print(f"wrote {out} ({found})")
    if not cfg.get("targets"):
        print("no target column recognised: set `targets` before training")
    if unplaced:
        print(f"not placed: {', '.join(unplaced)}")
    print(f"check it, then: python run.py data={name} data.path={a.cards}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
