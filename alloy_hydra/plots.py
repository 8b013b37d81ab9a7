"""Model plots: parity on the real holdout, Pareto front of accuracy vs complexity."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fit_label(name: str, y, p, unit: str) -> str:
    ok = np.isfinite(p)
    err = np.asarray(p, float)[ok] - np.asarray(y, float)[ok]
    ss = float(np.sum((np.asarray(y, float)[ok] - np.mean(np.asarray(y, float)[ok])) ** 2)) or 1.0
    return f"{name}: R² {1 - float(np.sum(err**2)) / ss:.3f}, MAE {float(np.mean(np.abs(err))):.3g} {unit}"


def error_bars(pred, sigma) -> np.ndarray:
    """±2σ bars as (lower, upper) lengths; the lower bar stops at zero (a property is never negative)."""
    pred, bar = np.asarray(pred, float), 2 * np.asarray(sigma, float)
    return np.vstack([np.minimum(bar, np.maximum(pred, 0.0)), bar])


def parity(y, preds: dict, target: str, unit: str, path) -> None:
    """Measured vs predicted on the real holdout. The first entry of `preds` is the run's model: drawn last (on
    top) with ±2σ bars that stop at zero; the others (baselines) beneath, without bars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 6))
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    items = list(preds.items())
    for name, (p, s) in reversed(items):
        p = np.asarray(p, float)
        if s is None:
            ax.plot(y, p, "o", ms=3, alpha=0.45, label=_fit_label(name, y, p, unit), zorder=1)
            continue
        yerr = error_bars(p, s)
        ax.errorbar(
            y,
            p,
            yerr=yerr,
            fmt="o",
            ms=4,
            alpha=0.85,
            elinewidth=0.6,
            zorder=3,
            label=_fit_label(f"{name} (±2σ)", y, p, unit),
        )
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, zorder=2)
    name, (p, _) = items[0]
    ax.set_title(f"{target} on the real holdout groups\n{_fit_label(name, y, np.asarray(p, float), unit)}", fontsize=10)
    ax.set_xlabel(f"measured {target} [{unit}]")
    ax.set_ylabel(f"predicted {target} [{unit}]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def pareto(table, chosen: int, path, target: str = "", unit: str = "") -> None:
    """The engine's front: grouped CV MAE (real cards) against formula size; the chosen member starred."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = table["physics_pass"].ne(False)
    ax.plot(table.loc[ok, "complexity"], table.loc[ok, "cv_mae"], "o", label="physics pass or n/a")
    ax.plot(table.loc[~ok, "complexity"], table.loc[~ok, "cv_mae"], "x", label="physics fail")
    row = table[table["id"] == chosen]
    ax.plot(row["complexity"], row["cv_mae"], "r*", ms=14, label="chosen")
    ax.set_xlabel("complexity (nodes of the expression tree)")
    ax.set_ylabel(f"grouped CV MAE of {target} [{unit}]" if unit else "grouped CV MAE")
    ax.set_title(f"{target} formulas: accuracy vs size" if target else "formulas: accuracy vs size", fontsize=10)
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def design_front(
    ranked, path, targets: dict | None = None, tolerance: dict | None = None, top: int = 0, units: dict | None = None
) -> None:
    """Left: every feasible recipe, cost against distance to the targets, the recommended (top) ones starred.
    Right: their predicted properties (the first two targets, or the target against cost) with the target and
    its tolerance marked."""
    plt = _plt()
    targets, tolerance, units = dict(targets or {}), dict(tolerance or {}), dict(units or {})

    def label(col):
        t = col.replace("_pred", "")
        return f"{t} predicted [{units[t]}]" if units.get(t) else f"{t} predicted"

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5))
    ok = ranked["in_domain"].astype(bool)
    best = ranked.index[: int(top)]
    sc = ax.scatter(ranked.loc[ok, "cost_index"], ranked.loc[ok, "distance"], c=ranked.loc[ok, "n_additions"], s=12)
    ax.scatter(
        ranked.loc[~ok, "cost_index"], ranked.loc[~ok, "distance"], marker="x", c="grey", s=12, label="out of domain"
    )
    ax.scatter(
        ranked.loc[best, "cost_index"],
        ranked.loc[best, "distance"],
        marker="*",
        s=90,
        facecolors="none",
        edgecolors="red",
        label=f"recommended (top {len(best)})",
    )
    ax.set_xlabel("cost index (price / price of Al)")
    ax.set_ylabel("distance to targets (in tolerances)")
    ax.legend(fontsize=8)
    fig.colorbar(sc, ax=ax, label="additions > 0.1 wt%")
    names = [t for t in targets if f"{t}_pred" in ranked]
    if names:
        xcol, ycol = (f"{names[0]}_pred", f"{names[1]}_pred") if len(names) > 1 else ("cost_index", f"{names[0]}_pred")
        bx.scatter(ranked[xcol], ranked[ycol], s=10, c="lightgrey", label="feasible recipes")
        bx.scatter(ranked.loc[best, xcol], ranked.loc[best, ycol], marker="*", s=90, c="red", label="recommended")
        for t, axis in ((names[0], "y" if len(names) == 1 else "x"), *(((names[1], "y"),) if len(names) > 1 else ())):
            v, tol = float(targets[t]), float(tolerance.get(t, 0.0))
            line, band = (bx.axhline, bx.axhspan) if axis == "y" else (bx.axvline, bx.axvspan)
            line(v, color="green", lw=1)
            band(v - tol, v + tol, color="green", alpha=0.12)
        bx.set_xlabel(label(xcol) if len(names) > 1 else "cost index (price / price of Al)")
        bx.set_ylabel(label(ycol))
        bx.set_title("target ± tolerance in green", fontsize=10)
        bx.legend(fontsize=8)
    else:
        bx.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def candidates_vs_cards(top, master, targets: dict, tolerance: dict, units: dict):
    """The recommended recipes among the tested cards, in the first two targets' plane (or the target against
    Mg): predicted ± σ for the recipes, measured for the cards, the target ± tolerance as a box. Returns the
    figure (the web page shows it; nothing is written)."""
    plt = _plt()
    names = list(targets)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    x = names[0] if len(names) > 1 else "Mg"
    y = names[1] if len(names) > 1 else names[0]

    def col(table, name, suffix):
        return table[f"{name}_{suffix}"] if name in targets else table[name]

    cards = master[[c for c in (x, y) if c in master]].apply(lambda s: s.astype(float)).dropna()
    if x in cards and y in cards:
        ax.scatter(cards[x], cards[y], s=10, c="lightgrey", label=f"tested cards ({len(cards)})")
    if len(top):
        ax.errorbar(
            col(top, x, "pred"),
            col(top, y, "pred"),
            xerr=top[f"{x}_std"] if x in targets else None,
            yerr=top[f"{y}_std"],
            fmt="*",
            ms=10,
            color="red",
            ecolor="salmon",
            label=f"recommended ({len(top)}), ±σ",
        )
        for r, (a, b) in enumerate(zip(col(top, x, "pred"), col(top, y, "pred")), start=1):
            if r <= 5:
                ax.annotate(str(r), (a, b), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ty, toly = float(targets[y]), float(tolerance.get(y, 0.0))
    if x in targets:
        tx, tolx = float(targets[x]), float(tolerance.get(x, 0.0))
        ax.add_patch(plt.Rectangle((tx - tolx, ty - toly), 2 * tolx, 2 * toly, color="green", alpha=0.2))
        ax.plot([tx], [ty], "g+", ms=14, label="target ± tolerance")
    else:
        ax.axhspan(ty - toly, ty + toly, color="green", alpha=0.2, label="target ± tolerance")
    ax.set_xlabel(f"{x} [{units.get(x, 'wt%')}]")
    ax.set_ylabel(f"{y} [{units.get(y, '')}]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
