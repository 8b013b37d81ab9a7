"""Model plots: parity on the real holdout, Pareto front of accuracy vs complexity."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parity(y, preds: dict, target: str, unit: str, path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    for name, (p, s) in preds.items():
        ax.errorbar(y, p, yerr=None if s is None else 2 * s, fmt="o", ms=4, alpha=0.7, label=name, elinewidth=0.6)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(f"measured {target} [{unit}] (real holdout)")
    ax.set_ylabel(f"predicted {target} [{unit}]")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def pareto(table, chosen: int, path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = table["physics_pass"].ne(False)
    ax.plot(table.loc[ok, "complexity"], table.loc[ok, "cv_mae"], "o", label="physics pass or n/a")
    ax.plot(table.loc[~ok, "complexity"], table.loc[~ok, "cv_mae"], "x", label="physics fail")
    row = table[table["id"] == chosen]
    ax.plot(row["complexity"], row["cv_mae"], "r*", ms=14, label="chosen")
    ax.set_xlabel("complexity (nodes)")
    ax.set_ylabel("grouped CV MAE")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def design_front(ranked, path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = ranked["in_domain"].astype(bool)
    sc = ax.scatter(ranked.loc[ok, "cost_index"], ranked.loc[ok, "distance"], c=ranked.loc[ok, "n_additions"], s=12)
    ax.scatter(
        ranked.loc[~ok, "cost_index"], ranked.loc[~ok, "distance"], marker="x", c="grey", s=12, label="out of domain"
    )
    ax.set_xlabel("cost index (price / price of Al)")
    ax.set_ylabel("normalised distance to targets")
    fig.colorbar(sc, label="additions > 0.1 wt%")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
