"""Every command of the README's quick start and real-data sections, run as a user runs it (issue 31's goal: each
≤ 5 min on an idle 2-core machine). Installs and the test suite are left out (their times are in the README);
the service and the page start in seconds once `registry demo` has trained their models.

    python benchmarks/bench_readme.py [--repeat 1] [--only main jitter ...] [--out /tmp/alloy_hydra_readme]
                                      [--data ../shared/data]

Each command runs in a fresh folder under --out (its run dir, its registry), with the repository's run.py; the
public files come from a dataset cache under --out filled from the local copies in --data (`datasets add`, the
offline twin of the README's `datasets fetch`). Prints
per command the wall times (min / median of --repeat runs), its exit code and whether the median is within 5 min.
Measure on an idle machine: the commands use both cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from alloy_hydra import datasets

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 300.0


def commands() -> dict[str, list[str]]:
    run = [sys.executable, str(ROOT / "run.py")]
    return {
        "main": run,  # python run.py
        "jitter": run + ["generator=jitter"],  # the sweep's and the trust section's generator
        "uq_al UTS": run + ["experiment=uq_al_uts"],
        "hu2021 YS": run + ["experiment=hu2021_ys"],
        "registry demo": [sys.executable, "-m", "alloy_hydra.registry", "--registry", "models", "demo"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--out", default="/tmp/alloy_hydra_readme")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    a = ap.parse_args()
    out = Path(a.out)
    os.environ[datasets.CACHE_ENV] = str(out / "datasets")
    for name, ds in datasets.DATASETS.items():
        datasets.add(name, Path(a.data) / ds.file)
    rows = []
    for name, cmd in commands().items():
        if a.only and name not in a.only:
            continue
        times, codes = [], []
        for rep in range(a.repeat):
            where = out / name.replace(" ", "_") / str(rep)
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir(parents=True)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=where, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            codes.append(proc.returncode)
            (where / "console.txt").write_text(proc.stdout + proc.stderr)
            print(f"{name} #{rep + 1}: {times[-1]:.1f} s, exit {proc.returncode}", flush=True)
        med = float(np.median(times))
        rows.append((name, min(times), med, max(codes), med <= GOAL_S))
    print(f"\n| command | min s | median s | exit | ≤ {GOAL_S / 60:g} min |\n|---|---|---|---|---|")
    for name, lo, med, code, ok in rows:
        print(f"| {name} | {lo:.0f} | {med:.0f} | {code} | {'yes' if ok else 'NO'} |")


if __name__ == "__main__":
    main()
