"""Closed-loop design hit rate on the demo ground truth (issue 6's bar), over several model sets.

    python benchmarks/bench_hit_rate.py [--seeds 42 1 7] [--committee K] [--out /tmp/hit_rate] [--reuse]
                                        [--train K=V ...] [--design K=V ...]

Per group of K seeds (K = 1 by default): `python run.py -m target=YS,UTS,FractureEL seed=S1,..,SK` (the README's
model-building command; the default generator=auto decides per target whether synthetic rows help)
up to the audit (each group a new holdout split, split.seed = its first seed, and new formulas), then the
design assistant (YS 260 / UTS 320 /
FractureEL 12, DC, max_cost 2) on that sweep dir — with K > 1 each target's seeds form a committee
(design.combine) — with NSGA-II and with random search on the same budget; prints each run's hit rate (top 10
scored by the ground truth, noise off) and the mean. One model set is a single draw: the formulas, and so the hit
rate, vary a lot between seeds, so judge a change by the mean over several groups. `--reuse` keeps model sets
already in --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import intervals  # benchmarks/intervals.py

ROOT = Path(__file__).resolve().parents[1]
DESIGN = [
    "design.targets.YS=260",
    "design.targets.UTS=320",
    "design.targets.FractureEL=12",
    "design.casting=DC",
    "design.max_cost=2.0",
]


def run(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args, "summary=false"], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode:
        sys.exit(f"run.py {' '.join(args)} failed:\n{proc.stderr[-2000:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--out", default="/tmp/alloy_hydra_hit_rate")
    ap.add_argument("--committee", type=int, default=1, help="seeds per model set (a committee per target)")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--train", nargs="*", default=[], help="extra overrides for the model runs")
    ap.add_argument("--design", nargs="*", default=[], help="extra overrides for the design runs")
    a = ap.parse_args()
    out = Path(a.out)
    rows = []
    groups = [a.seeds[i : i + a.committee] for i in range(0, len(a.seeds), a.committee)]
    for group in groups:
        seed, label = group[0], "_".join(map(str, group))
        models = out / f"models_{label}"
        t0 = time.perf_counter()
        if not (a.reuse and list(models.glob("**/model.json"))):
            run(
                [
                    "-m",
                    "target=YS,UTS,FractureEL",
                    "stages=[clean,split,generate,qc,train,audit]",
                    f"seed={','.join(map(str, group))}",
                    f"split.seed={group[0]}",  # a new draw of the data per model set; one holdout per committee
                    f"hydra.sweep.dir={models}",
                    *a.train,
                ]
            )
        t_train = time.perf_counter() - t0
        row = {"seed": label, "train_s": t_train}
        for method in ("nsga2", "random"):
            d = out / f"design_{label}_{method}"
            run(
                [
                    "stages=[design]",
                    f"design.models={models}",
                    *DESIGN,
                    f"optimizer={method}",
                    f"seed={seed}",
                    f"hydra.run.dir={d}",
                    *a.design,
                ]
            )
            m = json.loads((d / "metrics.json").read_text())
            row[method] = m.get("design_hit_rate")
            row[f"{method}_feasible"] = m.get("n_feasible")
            row[f"{method}_s"] = m.get("time_design_s")
        rows.append(row)
        print(
            f"seeds {label:>12}: NSGA-II {row['nsga2']}, random {row['random']} "
            f"(feasible {row['nsga2_feasible']} / {row['random_feasible']}; models {t_train:.0f} s, "
            f"design {row['nsga2_s']:.1f} / {row['random_s']:.1f} s)",
            flush=True,
        )
    for method in ("nsga2", "random"):
        vals = [r[method] for r in rows if r[method] is not None]
        print(
            f"{method}: {intervals.text(vals)}, min {min(vals):.2f} over {len(vals)} model sets"
            if vals
            else f"{method}: no recommendations"
        )


if __name__ == "__main__":
    main()
