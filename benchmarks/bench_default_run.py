"""The main job as a new user runs it (issue 18's bars): `python run.py seed=S split.seed=S` on the embedded demo
cards: each S a new holdout and new model seeds, i.e. a new draw of the data a lab might hold (the holdout's seed is
apart from the model seed since issue 28; with `seed=S` alone every run would hold out the same groups).

    python benchmarks/bench_default_run.py [--seeds 1 2 3 4 5] [--repeat 1] [--out /tmp/alloy_hydra_default]
                                           [overrides ...]

Per seed: wall time of the whole command (clean -> design), the closed-loop design_hit_rate (top 10 recipes scored
by the demo ground truth, noise off), the generator generator=auto chose, holdout R², the formula's size, whether
the in-domain flag separates error on the holdout (MAE in / out) and the Spearman ρ of σ with |error| there.
Prints min / median wall time and the mean and minimum hit rate. Measure on an idle machine: the run uses both
cores; `--repeat` reruns each seed for the time figures (the artifacts are identical: a run is a function of its
config).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import intervals  # benchmarks/intervals.py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", default="/tmp/alloy_hydra_default")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    rows, times = [], []
    for seed in a.seeds:
        for rep in range(a.repeat):
            d = Path(a.out) / f"seed{seed}_{rep}"
            t0 = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "run.py"),
                    f"seed={seed}",
                    f"split.seed={seed}",
                    "summary=false",
                    f"hydra.run.dir={d}",
                    *a.overrides,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - t0
            if proc.returncode:
                sys.exit(f"seed {seed} failed:\n{proc.stderr[-2000:]}")
            times.append(wall)
            m = json.loads((d / "metrics.json").read_text())
            row = {
                "seed": seed,
                "wall_s": round(wall, 1),
                "hit_rate": m.get("design_hit_rate"),
                "generator_used": m.get("generator_used"),
                "holdout_r2": round(m["holdout_r2"], 3),
                "nodes": m.get("complexity"),
                "mae_in": round(m["holdout_mae_in_domain"] or float("nan"), 2),
                "mae_out": round(m["holdout_mae_out_domain"] or float("nan"), 2),
                "rho_sigma": round(m["sigma_error_spearman"], 2),
                "cov_1sigma": round(m["coverage_1sigma"], 2),
            }
            if rep == 0:
                rows.append(row)
            print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    hits = [r["hit_rate"] for r in rows if r["hit_rate"] is not None]
    print(
        f"wall time: min {min(times):.1f} s, {intervals.text(times, np.median, 'median', '.1f')} s "
        f"over {len(times)} runs"
    )
    if hits:
        print(f"design_hit_rate: {intervals.text(hits)}, min {min(hits):.2f} over seeds {a.seeds}")
    print(f"Spearman rho(sigma, |error|) on the holdout: {intervals.text([r['rho_sigma'] for r in rows])}")
    print(f"1-sigma coverage on the holdout: {intervals.text([r['cov_1sigma'] for r in rows])}")


if __name__ == "__main__":
    main()
