"""The figures a run writes: what they must show."""

import numpy as np
import pandas as pd

from alloy_hydra import plots


def test_error_bars_stop_at_zero():
    low, high = plots.error_bars([1.0, 10.0, -0.5], [2.0, 1.0, 1.0])
    assert np.allclose(low, [1.0, 2.0, 0.0]) and np.allclose(high, [4.0, 2.0, 2.0])
    assert np.all(np.maximum([1.0, 10.0, -0.5], 0.0) - low >= 0.0)  # no bar reaches below zero


def test_every_plot_is_written(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.uniform(50, 300, 40)
    plots.parity(
        y,
        {"hinge": (y + rng.normal(0, 5, 40), np.full(40, 5.0)), "gbm": (y, None)},
        "YS",
        "MPa",
        tmp_path / "parity.png",
    )
    table = pd.DataFrame(
        {"id": [0, 1, 2], "complexity": [1, 5, 9], "cv_mae": [30.0, 10.0, 9.0], "physics_pass": [True, True, False]}
    )
    plots.pareto(table, 1, tmp_path / "pareto.png", "YS", "MPa")
    ranked = pd.DataFrame(
        {
            "cost_index": rng.uniform(1, 2, 50),
            "distance": rng.uniform(0, 5, 50),
            "n_additions": rng.integers(2, 6, 50),
            "in_domain": rng.random(50) > 0.2,
            "YS_pred": rng.uniform(200, 300, 50),
            "UTS_pred": rng.uniform(250, 350, 50),
        }
    )
    plots.design_front(
        ranked, tmp_path / "design.png", {"YS": 260, "UTS": 320}, {"YS": 10, "UTS": 15}, 5, {"YS": "MPa", "UTS": "MPa"}
    )
    plots.design_front(ranked, tmp_path / "design1.png", {"YS": 260}, {"YS": 10}, 5, {"YS": "MPa"})
    for name in ("parity", "pareto", "design", "design1"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000, name


def saved_figures(monkeypatch) -> list:
    """Every figure the plot functions save, kept open for inspection (they close it after saving)."""
    import matplotlib.figure
    import matplotlib.pyplot as plt

    kept, save = [], matplotlib.figure.Figure.savefig

    def keep(fig, *args, **kwargs):
        kept.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    monkeypatch.setattr(plt, "close", lambda *a, **k: None)
    return kept


def test_the_parity_plot_shows_the_model_with_2sigma_bars_over_its_baselines(monkeypatch, tmp_path):
    figs = saved_figures(monkeypatch)
    rng = np.random.default_rng(0)
    y = rng.uniform(50, 300, 40)
    p = y + rng.normal(0, 5, 40)
    plots.parity(y, {"hinge": (p, np.full(40, 5.0)), "gbm": (y + 20, None)}, "YS", "MPa", tmp_path / "p.png")
    ax = figs[-1].axes[0]
    assert ax.get_xlabel() == "measured YS [MPa]" and ax.get_ylabel() == "predicted YS [MPa]"
    r2 = 1 - np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert f"R² {r2:.3f}" in ax.get_title()  # the title scores the run's model, not a baseline
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("hinge (±2σ)") for t in labels) and any(t.startswith("gbm: R²") for t in labels)
    bars = [c for c in ax.containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert len(bars) == 1 and len(bars[0].lines[0].get_xdata()) == 40  # one model with error bars, every card
    diag = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert diag and list(diag[0].get_xdata()) == [y.min(), y.max()]  # the y = x line over the measured range


def test_the_pareto_plot_stars_the_chosen_member_and_separates_physics_failures(monkeypatch, tmp_path):
    figs = saved_figures(monkeypatch)
    table = pd.DataFrame(
        {
            "id": [0, 1, 2, 3],
            "complexity": [1, 5, 9, 15],
            "cv_mae": [30.0, 10.0, 9.0, 8.5],
            "physics_pass": [True, True, False, None],
        }  # fmt: skip
    )
    plots.pareto(table, 1, tmp_path / "f.png", "YS", "MPa")
    ax = figs[-1].axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines["chosen"].get_xdata()) == [5] and list(lines["chosen"].get_ydata()) == [10.0]
    assert list(lines["physics fail"].get_xdata()) == [9]
    assert list(lines["physics pass or n/a"].get_xdata()) == [1, 5, 15]  # n/a is not a failure
    assert ax.get_yscale() == "log" and "[MPa]" in ax.get_ylabel()


def test_the_design_plot_marks_the_top_recipes_and_the_target_band(monkeypatch, tmp_path):
    figs = saved_figures(monkeypatch)
    rng = np.random.default_rng(1)
    ranked = pd.DataFrame(
        {
            "cost_index": rng.uniform(1, 2, 30),
            "distance": rng.uniform(0, 5, 30),
            "n_additions": rng.integers(2, 6, 30),
            "in_domain": np.r_[np.ones(25, bool), np.zeros(5, bool)],
            "YS_pred": rng.uniform(200, 300, 30),
            "UTS_pred": rng.uniform(250, 350, 30),
        }
    )
    plots.design_front(ranked, tmp_path / "d.png", {"YS": 260, "UTS": 320}, {"YS": 10, "UTS": 15}, 4, {"YS": "MPa"})
    left, right = figs[-1].axes[:2]
    top = [c for c in left.collections if c.get_label().startswith("recommended")][0]
    assert top.get_label() == "recommended (top 4)" and len(top.get_offsets()) == 4
    out = [c for c in left.collections if c.get_label() == "out of domain"][0]
    assert len(out.get_offsets()) == 5
    assert right.get_xlabel() == "YS predicted [MPa]" and right.get_ylabel() == "UTS predicted"
    bands = [p for p in right.patches]  # target ± tolerance: a vertical band for YS, a horizontal one for UTS
    extents = sorted((round(b.get_extents().width), round(b.get_extents().height)) for b in bands)
    assert len(bands) == 2 and extents[0] != extents[1]
    green = [ln for ln in right.get_lines() if ln.get_color() == "green"]
    assert sorted(float(np.ravel(ln.get_xdata())[0]) for ln in green if np.ptp(ln.get_xdata()) == 0) == [260.0]
