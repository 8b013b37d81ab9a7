"""Inverse-design speed (issue 6 goal: NSGA-II 100 x 200 on three symbolic models <= 3 s) and NSGA-II vs random.

    python benchmarks/bench_design.py MODELS_DIR [--combine best|committee] [--profile]

MODELS_DIR holds run dirs with YS, UTS and FractureEL models (e.g. a sweep dir, or three `python run.py
generator=none target=...` runs). Prints the optimisation time alone (models loaded, space built). The issue's
goal is for three symbolic models (--combine best); a committee of K seeds costs about K times the model part.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models")
    ap.add_argument("--combine", default="best", choices=["best", "committee"])
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    import pandas as pd

    from alloy_hydra import design, selection
    from alloy_hydra.config import DesignConfig, load_run_config

    models, source = selection.load_models(a.models, a.combine)
    cfg = load_run_config(source)
    master = pd.read_csv(source / "BASE_MASTER.csv", dtype={c: str for c in cfg.data.id_columns})
    targets = {"YS": 260.0, "UTS": 320.0, "FractureEL": 12.0}
    dc = DesignConfig(max_cost=2.0)
    space = design.Space(master, cfg.data, cfg.chem_window, dc, fixed={"casting": "DC"})
    ev = design.Evaluator(space, {t: models[t] for t in targets}, dc, cfg.cleaning, targets)
    for method in ("nsga2", "random"):
        t0 = time.perf_counter()
        if a.profile and method == "nsga2":
            import cProfile
            import pstats

            pr = cProfile.Profile()
            pr.enable()
        search = {"nsga2": design.NSGA2Search, "random": design.RandomSearch}[method](method, 100, 200, 0)
        X = search.minimise(ev)
        dt = time.perf_counter() - t0
        if a.profile and method == "nsga2":
            pr.disable()
            pstats.Stats(pr).sort_stats("tottime").print_stats(25)
        t1 = time.perf_counter()
        ranked = design.rank(ev, X, master, list(cfg.data.id_columns))
        print(
            f"{method:<7} 100 x 200: optimise {dt:5.2f} s, rank {time.perf_counter() - t1:5.2f} s, "
            f"{len(X)} candidates, {len(ranked)} feasible, best distance "
            f"{ranked['distance'].min() if len(ranked) else float('nan'):.3f}"
        )


if __name__ == "__main__":
    main()
