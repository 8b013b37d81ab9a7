"""The demo's metallurgical ground truth: properties of an AA5xxx sheet from its recipe.

A deliberately simple, documented model (handbook-typical magnitudes, not a fitted one). Inputs are cleaned
cards (BASE_MASTER columns: wt% elements, `homog_schedule`, `recryst_schedule` in canonical `T/seconds`
form, `cold_reduction_pct`, `casting`, optionally `grain_size_um`), so it can score any recipe the designer
writes as a card.

- Grain size d (µm): recrystallised size falls with cold strain and with dispersoid formers (Mn, Cr, Zr, Sc;
  a long homogenisation at >= 520 °C coarsens dispersoids and weakens that pinning), grows with annealing
  temperature; unrecrystallised material keeps the hot-band size; CC strip is 15 % finer.
- Recrystallised fraction X: JMAK, n = 2.0, with t50 = 900 s at 340 °C for strain 1, Q = 175 kJ/mol,
  t50 ∝ strain^-2.5 and retarded by dispersoid formers; steps add by time/t50. These differ on purpose from the
  cleaning's recrystallisation rule (config.recryst_rule: literature defaults Q = 200 kJ/mol, strain^-2, Avrami
  1.5, 1 h at 340 °C): a lab's rule is a prior, never its material's truth, so the demo must not share them.
  Recovery below recrystallisation removes up to 35 % of the stored work hardening between 150 and 350 °C.
- YS = 10 + 16 Mg + 25 Mn + 20 Cr + 40 Zr + 150 Sc + 5 (Fe + Si) + 3 Cu  (solid solution + dispersoids)
       + 110 / sqrt(d)                                                    (Hall-Petch, MPa with d in µm)
       + K eps_r^0.45, K = 50 + 35 Mg                                    (work hardening of retained strain)
  5052-O ≈ 85 MPa, 5083-O ≈ 130-145 MPa, 5182-H19 ≈ 420 MPa.
- UTS = YS + (60 + 19 Mg + 20 Mn) exp(-dsigma_wh / 110)  (work-hardening capacity used up by cold work)
- FractureEL = (32 - 1.6 Mg - 6 (Fe + Si) - 4 Mn - 20 Sc + ln(30/d)) (0.12 + 0.88 exp(-1.8 eps_r)),
  x0.9 without adequate homogenisation of DC ingot, x0.95 for CC strip.
- UniformEL = FractureEL (0.25 + 0.55 exp(-3 eps_r)) (<= FractureEL by construction)
- YPE (Lüders) = 0.45 max(0, Mg - 1) sqrt(15 / d) exp(-10 eps_r) X: grows with Mg, shrinks with grain size
  and with retained cold work.
Noise (measurement): YS sd 4 MPa, UTS sd 5 MPa, FractureEL sd 1.0 %, UniformEL sd 0.8 %, YPE sd 0.08 % + 8 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from . import schedule
from .schedule import R_GAS
from .schema import TARGETS

NOISE_SD = {"YS": 4.0, "UTS": 5.0, "FractureEL": 1.0, "UniformEL": 0.8, "YPE": 0.08}
# the simulated material's recrystallisation kinetics (see the module doc: not the cleaning rule's constants)
Q_RX_J_MOL = 175e3
AVRAMI_N = 2.0
T50_S = 900.0  # at T_REF_C for a strain of 1
T_REF_C = 340.0
STRAIN_EXPONENT = 2.5


def _col(cards: pd.DataFrame, name: str, default=0.0) -> np.ndarray:
    return cards[name].to_numpy(dtype=float) if name in cards else np.full(len(cards), default)


def _steps(cards: pd.DataFrame, column: str) -> list[list[schedule.Step]]:
    if column not in cards:
        return [[] for _ in range(len(cards))]
    return [schedule.parse(s) for s in cards[column].fillna("")]


def _pinning(cards: pd.DataFrame, homog_steps) -> np.ndarray:
    mn, cr, zr, sc = (_col(cards, e) for e in ("Mn", "Cr", "Zr", "Sc"))
    coarsening = np.array([min(1.0, schedule.time_at_or_above(s, 520.0) / 86400.0) for s in homog_steps])
    return 1.0 + (0.6 * mn + 1.5 * cr + 4.0 * zr + 6.0 * sc) * (1.0 - 0.3 * coarsening)


def cold_strain(cold_reduction_pct: np.ndarray) -> np.ndarray:
    r = np.clip(np.nan_to_num(cold_reduction_pct), 0.0, 99.0) / 100.0
    return (2.0 / np.sqrt(3.0)) * np.log(1.0 / (1.0 - r))


def state(cards: pd.DataFrame) -> pd.DataFrame:
    """Microstructural state of each card: cold strain, recrystallised fraction, recovery, grain size."""
    homog, recryst = _steps(cards, "homog_schedule"), _steps(cards, "recryst_schedule")
    eps = cold_strain(_col(cards, "cold_reduction_pct"))
    pin = _pinning(cards, homog)
    x = np.zeros(len(cards))
    recovery = np.ones(len(cards))
    d_rx = np.zeros(len(cards))
    for i, steps in enumerate(recryst):
        if not steps:
            continue
        e = max(eps[i], 0.05)
        dose = sum(
            s.time_s
            / (
                T50_S
                * e**-STRAIN_EXPONENT
                * pin[i] ** 2
                * np.exp(Q_RX_J_MOL / R_GAS * (1 / (s.temp_C + 273.15) - 1 / (T_REF_C + 273.15)))
            )
            for s in steps
        )
        x[i] = 1.0 - np.exp(-np.log(2.0) * dose**AVRAMI_N)
        t_max = max(s.temp_C for s in steps)
        recovery[i] = 1.0 - 0.35 * np.clip((t_max - 150.0) / 200.0, 0.0, 1.0)
        t_total = sum(s.time_s for s in steps)
        d_rx[i] = (25.0 * e**-0.5 * np.exp(0.004 * (t_max - 400.0)) * (t_total / 3600.0) ** 0.05) / pin[i]
    d_hot = 50.0 / pin
    cc = (
        (cards["casting"].astype(str).str.upper() == "CC").to_numpy()
        if "casting" in cards
        else np.zeros(len(cards), bool)
    )
    d = np.where(x > 0, x * d_rx + (1.0 - x) * d_hot, d_hot) * np.where(cc, 0.85, 1.0)
    d = np.clip(d, 3.0, 200.0)
    eps_r = eps * (1.0 - x) * recovery
    adequate = np.array([schedule.time_at_or_above(s, 520.0) >= 7200.0 for s in homog])
    return pd.DataFrame(
        {
            "eps": eps,
            "X": x,
            "recovery": recovery,
            "grain_size_um": d,
            "eps_retained": eps_r,
            "adequate_homog": adequate,
            "cc": cc,
        },
        index=cards.index,
    )


def grain_size(cards: pd.DataFrame) -> np.ndarray:
    return state(cards)["grain_size_um"].to_numpy()


def properties(cards: pd.DataFrame, noise: bool = False, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """YS, UTS (MPa), FractureEL, UniformEL, YPE (%) of each card; the card's own grain size if it has one."""
    st = state(cards)
    d = st["grain_size_um"].to_numpy()
    if "grain_size_um" in cards:
        given = cards["grain_size_um"].to_numpy(dtype=float)
        d = np.where(np.isfinite(given), given, d)
    el = {e: _col(cards, e) for e in ("Mg", "Mn", "Cr", "Zr", "Sc", "Fe", "Si", "Cu")}
    eps_r, x = st["eps_retained"].to_numpy(), st["X"].to_numpy()
    ss = (
        10
        + 16 * el["Mg"]
        + 25 * el["Mn"]
        + 20 * el["Cr"]
        + 40 * el["Zr"]
        + 150 * el["Sc"]
        + 5 * (el["Fe"] + el["Si"])
        + 3 * el["Cu"]
    )
    wh = (50 + 35 * el["Mg"]) * eps_r**0.45
    ys = ss + 110.0 / np.sqrt(d) + wh
    uts = ys + (60 + 19 * el["Mg"] + 20 * el["Mn"]) * np.exp(-wh / 110.0)
    el_o = 32 - 1.6 * el["Mg"] - 6 * (el["Fe"] + el["Si"]) - 4 * el["Mn"] - 20 * el["Sc"] + np.log(30.0 / d)
    homog_factor = np.where(st["cc"], 0.95, np.where(st["adequate_homog"], 1.0, 0.9))
    fel = np.maximum(el_o, 1.0) * (0.12 + 0.88 * np.exp(-1.8 * eps_r)) * homog_factor
    uel = fel * (0.25 + 0.55 * np.exp(-3.0 * eps_r))
    ype = 0.45 * np.maximum(0.0, el["Mg"] - 1.0) * np.sqrt(15.0 / d) * np.exp(-10.0 * eps_r) * x
    out = pd.DataFrame({"YS": ys, "UTS": uts, "FractureEL": fel, "UniformEL": uel, "YPE": ype}, index=cards.index)
    if noise:
        rng = rng or np.random.default_rng(0)
        for name in TARGETS:
            sd = NOISE_SD[name] + (0.08 * out[name] if name == "YPE" else 0.0)
            out[name] = out[name] + sd * normal(rng, len(out))
        out["YPE"] = out["YPE"].clip(lower=0.0)
        out["UniformEL"] = np.minimum(out["UniformEL"].clip(lower=0.1), out["FractureEL"])
    return out


def normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Standard normals from uniform doubles: the bit stream is stable across numpy versions, so the demo
    file regenerates byte-for-byte (Generator.normal's algorithm is not guaranteed stable)."""
    return ndtri(np.clip(rng.random(n), 1e-12, 1 - 1e-12))


def cast(raw: pd.DataFrame, cfg, rng: np.random.Generator, noise: bool = True) -> pd.DataFrame:
    """Demo only: "cast and test" recipe cards (raw, in the demo schema): each is cleaned as the lab's cards are,
    its grain size and properties come from this ground truth (with measurement noise), and the measured values
    are written into the card's grain-size and property columns, as a lab would fill them in."""
    from .clean import clean_for_prediction

    raw = raw.copy()
    if "source_row" not in raw:
        raw.insert(0, "source_row", np.arange(2, len(raw) + 2))
    text = raw.astype({c: str for c in raw.columns if c != "source_row"})
    kept = clean_for_prediction(text, cfg, source="cast").master
    cards = kept.drop(columns=["grain_size_um"], errors="ignore")
    measured = properties(cards, noise=noise, rng=rng)
    grain = state(cards)["grain_size_um"].to_numpy()
    pos = raw.index[raw["source_row"].isin(kept["source_row"])]
    order = pd.Series(range(len(kept)), index=kept["source_row"].to_numpy())
    idx = order.loc[raw.loc[pos, "source_row"].to_numpy()].to_numpy()
    for t, col in cfg.data.targets.items():
        raw[col] = ""
        raw.loc[pos, col] = [f"{v:.1f}" if t in ("YS", "UTS") else f"{v:.2f}" for v in measured[t].to_numpy()[idx]]
    grain_col = cfg.data.numeric.get("grain_size_um")
    if grain_col is not None:
        raw.loc[pos, grain_col.column] = [f"{g:.1f} um" for g in grain[idx]]
    return raw.drop(columns=["source_row"])
