"""The embedded demo dataset: ~333 AA5xxx data cards that look like a lab's, labelled by ground_truth.

Regenerate the committed file byte-for-byte:  python -m alloy_hydra.demo [--out PATH] [--seed 7]
Only uniform doubles are drawn from numpy (a stable bit stream), so the output does not drift with numpy.
"""

from __future__ import annotations

import argparse
import csv
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from . import ground_truth, schedule

SEED = 7
ELEMENTS = ("Si", "Fe", "Cu", "Mn", "Mg", "Cr", "Ni", "Zn", "Ti", "Zr", "Sc", "Other")
HEADER = [
    "file_name",
    "card",
    "alloy",
    "test_no",
    "Casting",
    "Ingot thickness",
    *ELEMENTS,
    "Al",
    "Homogenization",
    "Hot rolling reduction (%)",
    "Cold rolling reduction (%)",
    "Recrystallization annealing",
    "Recryst type",
    "Grain size (um)",
    "YS (MPa)",
    "UTS (MPa)",
    "Fracture EL (%)",
    "Uniform EL (%)",
    "YPE (%)",
]
# nominal compositions (wt%) of the alloys the demo lab works on; all inside the AA5xxx window
NOMINAL = {
    "5005": dict(Mg=0.8, Mn=0.10, Cr=0.05, Fe=0.45, Si=0.20),
    "5052": dict(Mg=2.5, Mn=0.05, Cr=0.22, Fe=0.30, Si=0.10),
    "5754": dict(Mg=3.0, Mn=0.30, Cr=0.10, Fe=0.30, Si=0.20),
    "5454": dict(Mg=2.7, Mn=0.75, Cr=0.12, Fe=0.30, Si=0.15),
    "5154": dict(Mg=3.5, Mn=0.05, Cr=0.22, Fe=0.30, Si=0.15),
    "5086": dict(Mg=4.0, Mn=0.45, Cr=0.15, Fe=0.30, Si=0.20),
    "5182": dict(Mg=4.5, Mn=0.35, Cr=0.05, Fe=0.25, Si=0.10),
    "5083": dict(Mg=4.45, Mn=0.70, Cr=0.15, Fe=0.30, Si=0.20),
    "5456": dict(Mg=5.1, Mn=0.80, Cr=0.12, Fe=0.25, Si=0.15),
    "5383": dict(Mg=4.7, Mn=0.85, Cr=0.15, Fe=0.20, Si=0.15, Zn=0.20, Zr=0.10),
    "5059": dict(Mg=5.5, Mn=0.90, Cr=0.10, Fe=0.25, Si=0.20, Zn=0.20, Zr=0.12),
    "5024": dict(Mg=4.2, Mn=0.30, Cr=0.05, Fe=0.15, Si=0.10, Sc=0.25, Zr=0.10),
}
AA5XXX_MAX = dict(
    Mg=6.0, Cu=0.1, Mn=1.5, Cr=0.25, Fe=0.5, Si=0.5, Zn=0.25, Ti=0.15, Zr=0.15, Sc=0.30, Ni=0.10, Other=0.15
)
# (file name, casting, alloys studied, number of cards): twelve study files
FILES = [
    ("2017_DC_O-temper_baseline.xlsx", "DC", ["5052", "5754", "5083"], 28),
    ("2017_CC_strip_trials.xlsx", "CC", ["5005", "5052", "5754"], 26),
    ("2018_DC_5182_can_end.xlsx", "DC", ["5182"], 27),
    ("2018_flash_anneal_CAL.xlsx", "DC", ["5182", "5754", "5086"], 27),
    ("2019_DC_marine_plate.xlsx", "DC", ["5083", "5383", "5456"], 26),
    ("2019_CC_5xxx_roll_trials.xlsx", "CC", ["5182", "5086", "5454"], 25),
    ("2020_partial_anneal_H2x.xlsx", "DC", ["5052", "5154", "5454"], 26),
    ("2020_high_Mg_5059.xlsx", "DC", ["5059", "5456"], 24),
    ("2021_Sc_Zr_modified.xlsx", "DC", ["5024", "5383"], 24),
    ("2021_cold_work_series.xlsx", "DC", ["5052", "5182", "5083"], 27),
    ("2022_homogenisation_study.xlsx", "DC", ["5083", "5182"], 26),
    ("2022_CC_thin_gauge.xlsx", "CC", ["5052", "5182", "5754"], 24),
]


class _Draw:
    """Uniform doubles only (stable across numpy versions)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def u(self, a=0.0, b=1.0):
        return a + (b - a) * float(self.rng.random())

    def n(self, sd=1.0):
        return sd * float(ground_truth.normal(self.rng, 1)[0])

    def pick(self, items, p=None):
        p = np.full(len(items), 1 / len(items)) if p is None else np.asarray(p, float) / np.sum(p)
        return items[min(int(np.searchsorted(np.cumsum(p), self.u())), len(items) - 1)]


def _fmt_step(r: _Draw, temp: float, hours: float | None, seconds: float | None) -> str:
    secs = seconds if seconds is not None else hours * 3600
    style = r.pick(["canon", "Ch", "spaced", "F", "K", "at"], [3, 3, 2, 1, 1, 1])
    if seconds is not None or style == "canon":
        return f"{temp:g}/{secs:g}" if style != "spaced" else f"{temp:g} °C / {secs:g} s"
    if style == "Ch":
        return f"{temp:g}C/{hours:g}h"
    if style == "spaced":
        return f"{temp:g} °C / {hours:g} h"
    if style == "F":
        return f"{temp * 9 / 5 + 32:g}F x {hours:g}hr"
    if style == "K":
        return f"{temp + 273:g}K/{hours * 60:g}min"
    return f"{hours:g}h @ {temp:g}C"


def _join(r: _Draw, steps: list[str]) -> str:
    return r.pick([" + ", "; ", " then "], [4, 1, 1]).join(steps)


def _recipe(r: _Draw, alloy: str, casting: str, file_name: str) -> dict:
    nom = NOMINAL[alloy]
    comp = {}
    for el in ELEMENTS:
        base = nom.get(el, {"Cu": 0.04, "Ti": 0.02, "Ni": 0.005, "Zn": 0.03, "Other": 0.05}.get(el, 0.0))
        if base == 0.0:
            comp[el] = 0.0
            continue
        v = base + r.n(0.18) if el == "Mg" else base * (1 + r.n(0.15))
        comp[el] = round(float(np.clip(v, 0.0, AA5XXX_MAX[el])), 2 if el != "Ni" else 3)
    rec = {"alloy": alloy, "casting": casting, **comp}
    homog_steps, recryst_steps = [], []
    if casting == "DC":
        rec["ingot_mm"] = round(r.u(450, 620))
        if r.u() < 0.85 or "homogenisation" in file_name:
            t1 = 5 * round(r.u(500, 550) / 5)
            homog_steps.append((t1, r.pick([2, 4, 5, 6, 8, 10, 12]), None))
            if r.u() < 0.5:
                homog_steps.append((5 * round(r.u(460, 500) / 5), r.pick([4, 6, 12, 24]), None))
        else:
            homog_steps.append((5 * round(r.u(460, 500) / 5), r.pick([2, 4]), None))
        rec["hot_pct"] = round(r.u(97.5, 99.3), 1)
    else:
        rec["ingot_mm"] = round(r.u(6, 10), 1)
        if r.u() < 0.3:
            homog_steps.append((5 * round(r.u(450, 520) / 5), r.pick([2, 4, 6, 8]), None))
        rec["hot_pct"] = round(r.u(0, 50), 1)
    cold = 0.0 if r.u() < 0.08 else round(r.u(15, 85), 1)
    if "cold_work" in file_name:
        cold = round(r.u(10, 85), 1)
    rec["cold_pct"] = cold
    w = {"none": 0.18, "batch": 0.45, "flash": 0.25, "other": 0.12}
    if "flash" in file_name:
        w = {"none": 0.05, "batch": 0.15, "flash": 0.75, "other": 0.05}
    if "partial" in file_name:
        w = {"none": 0.1, "batch": 0.3, "flash": 0.1, "other": 0.5}
    if "cold_work" in file_name:
        w = {"none": 0.6, "batch": 0.2, "flash": 0.1, "other": 0.1}
    kind = r.pick(list(w), list(w.values()))
    if kind == "batch":
        recryst_steps.append((5 * round(r.u(300, 420) / 5), r.pick([1, 2, 3, 4, 6]), None))
    elif kind == "flash":
        recryst_steps.append((5 * round(r.u(450, 540) / 5), None, r.pick([10, 15, 20, 30, 45, 60, 90])))
    elif kind == "other":  # recovery / partial anneal (H2x-like)
        recryst_steps.append((5 * round(r.u(200, 290) / 5), r.pick([1, 2, 3, 4]), None))
    rec["recryst_kind"] = kind
    rec["homog_steps"], rec["recryst_steps"] = homog_steps, recryst_steps
    return rec


def _canon(steps) -> str:
    return schedule.canonical([schedule.Step(float(t), float(s if s is not None else h * 3600)) for t, h, s in steps])


def _frame(r: _Draw) -> pd.DataFrame:
    """One recipe per card: alloy, casting (8 % of cards cast the other way), process, composition."""
    recipes = []
    for file_name, casting, alloys, n_cards in FILES:
        for k in range(n_cards):
            rec = _recipe(
                r, r.pick(alloys), casting if r.u() < 0.92 else ("CC" if casting == "DC" else "DC"), file_name
            )
            rec.update(file_name=file_name, card=f"C{k + 1:03d}")
            recipes.append(rec)
    frame = pd.DataFrame(recipes)
    frame["homog_schedule"] = frame["homog_steps"].map(_canon)
    frame["recryst_schedule"] = frame["recryst_steps"].map(_canon)
    frame["cold_reduction_pct"] = frame["cold_pct"]
    frame["Al"] = 100 - frame[list(ELEMENTS)].sum(axis=1)
    return frame


def _tests(r: _Draw, frame: pd.DataFrame) -> list[tuple]:
    """(recipe, test number, measured grain size, measured properties) per tensile test; 7 % of cards repeat."""
    grain = ground_truth.grain_size(frame)
    rows = []
    repeats = {i for i in range(len(frame)) if r.u() < 0.07}
    for i, rec in frame.iterrows():
        measured_d = round(float(grain[i] * np.exp(r.n(0.08))), 1)
        for test_no in range(1, (2 + (r.u() < 0.3) if i in repeats else 1) + 1):
            card = pd.DataFrame([{**rec.to_dict(), "grain_size_um": measured_d}])
            props = ground_truth.properties(card, noise=True, rng=r.rng).iloc[0]
            rows.append((rec, test_no, measured_d, props))
    return rows


def _composition_cells(r: _Draw, rec: pd.Series) -> list[str]:
    """Composition as a lab writes it: absent trace elements blank, zero or '<0.01'."""
    comp = []
    for el in ELEMENTS:
        v = rec[el]
        if v == 0.0:
            comp.append(r.pick(["", "0", "<0.01"], [3, 2, 1]) if el in ("Sc", "Zr", "Ni") else "0")
        elif v < 0.01:
            comp.append("<0.01")
        else:
            comp.append(f"{v:g}")
    return comp


def _ingot_cell(r: _Draw, rec: pd.Series) -> str:
    """A DC ingot's thickness in mixed units (mm, bare number, cm, inches); a CC strip's in mm."""
    if rec["casting"] != "DC":
        return f"{rec['ingot_mm']:g} mm"
    style = r.pick(["mm", "bare", "cm", "in"], [4, 4, 1, 1])
    return {
        "mm": f"{rec['ingot_mm']:g} mm",
        "bare": f"{rec['ingot_mm']:g}",
        "cm": f"{rec['ingot_mm'] / 10:g} cm",
        "in": f"{rec['ingot_mm'] / 25.4:.2f} in",
    }[style]


def _card_cells(r: _Draw, rec: pd.Series, test_no: int, d: float, props: pd.Series) -> list[str]:
    """One tensile test as the cells of a card, in HEADER order."""
    comp = _composition_cells(r, rec)
    al = "bal." if r.u() < 0.85 else f"{round(rec['Al'], 2):g}"
    ingot = _ingot_cell(r, rec)
    if rec["homog_steps"]:
        homog = _join(r, [_fmt_step(r, *s) for s in rec["homog_steps"]])
    else:
        homog = r.pick(["", "none", "-"])
    if rec["recryst_steps"]:
        recryst = _join(r, [_fmt_step(r, *s) for s in rec["recryst_steps"]])
    else:
        recryst = r.pick(["", "none", "as rolled"])
    written = rec["recryst_kind"] if r.u() < 0.6 else ""
    spelt = {"batch": r.pick(["batch", "Batch"]), "flash": r.pick(["flash", "Flash"])}  # both drawn, always
    written = spelt.get(written, written)
    grain_txt = f"{d:g}" if r.u() < 0.8 else f"{d:g} µm"
    props_txt = [f"{props[t]:.1f}" for t in ("YS", "UTS", "FractureEL", "UniformEL")] + [f"{props['YPE']:.2f}"]
    return [
        rec["file_name"],
        rec["card"],
        f"AA{rec['alloy']}",
        str(test_no),
        rec["casting"],
        ingot,
        *comp,
        al,
        homog,
        f"{rec['hot_pct']:g}",
        f"{rec['cold_pct']:g}",
        recryst,
        written,
        grain_txt,
        *props_txt,
    ]


def make_cards(seed: int = SEED) -> list[list[str]]:
    r = _Draw(seed)
    frame = _frame(r)
    out = [_card_cells(r, *row) for row in _tests(r, frame)]
    _sparsify_and_corrupt(r, out)
    return out


def _sparsify_and_corrupt(r: _Draw, out: list[list[str]]) -> None:
    """Realistic label gaps and a few deliberate conflicts for the integrity rules to catch."""
    idx = {h: HEADER.index(h) for h in HEADER}
    n = len(out)
    order = sorted(range(n), key=lambda _: r.u())
    uts_gap, fel_gaps = order[:1], order[1:5]
    for i in uts_gap:
        out[i][idx["UTS (MPa)"]] = ""
    for i in fel_gaps:
        out[i][idx["Fracture EL (%)"]] = ""
    keep_uel = set(sorted(range(n), key=lambda _: r.u())[:66])
    keep_ype = set(sorted(range(n), key=lambda _: r.u())[:212])
    for i in range(n):
        if i not in keep_uel or out[i][idx["Fracture EL (%)"]] == "":
            out[i][idx["Uniform EL (%)"]] = ""
        if i not in keep_ype:
            out[i][idx["YPE (%)"]] = ""
    # uniform elongation typed into the wrong column on a few cards: UniformEL > FractureEL (clamped)
    with_uel = [i for i in range(n) if out[i][idx["Uniform EL (%)"]]]
    for i in with_uel[3:8]:
        out[i][idx["Uniform EL (%)"]], out[i][idx["Fracture EL (%)"]] = (
            out[i][idx["Fracture EL (%)"]],
            out[i][idx["Uniform EL (%)"]],
        )
    # YS and UTS swapped on three cards (rejected: YS > UTS)
    full = [i for i in order[10:] if out[i][idx["UTS (MPa)"]]]
    for i in full[:3]:
        out[i][idx["YS (MPa)"]], out[i][idx["UTS (MPa)"]] = out[i][idx["UTS (MPa)"]], out[i][idx["YS (MPa)"]]
    # a 6xxx card filed among the 5xxx ones (rejected by the AA5xxx window)
    out[full[5]][idx["Cu"]] = "0.35"
    # one row pasted twice (rejected as a duplicate)
    out.insert(full[7] + 1, list(out[full[7]]))


def to_csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    return buf.getvalue()


def demo_path() -> Path:
    return Path(str(resources.files("alloy_hydra") / "data" / "demo_cards.csv"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(demo_path()))
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    Path(args.out).write_text(to_csv(make_cards(args.seed)), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
