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
