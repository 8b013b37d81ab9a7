"""Sweep speed (issue 7 goals): the whole 5x3 generator grid with defaults on demo <= 10 min on 2 cores, and
joblib vs the basic launcher on a small grid: speed-up >= 1.7x with 2 workers.

    python benchmarks/bench_sweep.py grid        # python run.py -m sweeps=generator_grid (all stages)
    python benchmarks/bench_sweep.py speedup     # 4 jobs, joblib (2 workers) vs basic (sequential)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def sweep(args) -> tuple[float, pd.DataFrame]:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), "-m", *args, f"hydra.sweep.dir={d}", "summary=false"],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        table = pd.read_csv(Path(d) / "comparison.csv") if (Path(d) / "comparison.csv").exists() else pd.DataFrame()
        if proc.returncode:
            print(proc.stderr[-2000:])
        return wall, table


def main(what: str) -> None:
    if what == "grid":
        wall, table = sweep(["sweeps=generator_grid"])
        print(
            f"generator grid (15 jobs, all stages, joblib 2 workers): {wall / 60:.1f} min, "
            f"{(table['status'] == 'complete').sum()} complete"
        )
        cols = [
            c
            for c in (
                "target",
                "generator",
                "qc_pass",
                "tstr_r2",
                "aug_r2",
                "real_only_r2",
                "holdout_r2",
                "baseline_gbm_r2",
                "design_hit_rate",
                "time_generate_s",
                "time_train_s",
            )
            if c in table
        ]
        print(table[cols].to_string(index=False))
    else:
        small = [
            "target=YS,UTS",
            "generator=jitter,none",
            "stages=[clean,split,generate,qc,train]",
            "regressor.generations=30",
        ]
        t_joblib, _ = sweep(small)
        t_basic, _ = sweep([*small, "hydra/launcher=basic"])
        print(f"4 jobs: basic {t_basic:.1f} s, joblib (2 workers) {t_joblib:.1f} s, speed-up {t_basic / t_joblib:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "grid")
