"""A refactor changes no behaviour: the main job at two commits, same config, gives byte-identical model.json and
recommendations.csv (issue 30). A run is a function of its config, so any difference is the code's.

    python benchmarks/same_output.py BEFORE [AFTER=HEAD] [--out /tmp/alloy_hydra_same] [overrides ...]

Each commit is checked out in its own git worktree under --out and runs `python run.py seed=3 split.seed=3
summary=false [overrides]`; prints, per artifact, identical or the first differing line. Exit 1 on a difference.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ("model.json", "recommendations.csv", "equation.txt")


def run_at(rev: str, where: Path, overrides: list[str]) -> Path:
    tree = where / f"tree_{rev}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True)
    run_dir = where / f"run_{rev}"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(tree / "run.py"), "seed=3", "split.seed=3", "summary=false", *overrides]
    subprocess.run([*cmd, f"hydra.run.dir={run_dir}"], cwd=tree, env=env, check=True, capture_output=True)
    return run_dir


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after", nargs="?", default="HEAD")
    ap.add_argument("--out", default="/tmp/alloy_hydra_same")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    revs = [subprocess.run(["git", "rev-parse", "--short", r], cwd=ROOT, capture_output=True, text=True).stdout.strip()
            for r in (a.before, a.after)]  # fmt: skip
    dirs = [run_at(r, out, a.overrides) for r in revs]
    same = True
    for name in ARTIFACTS:
        x, y = ((d / name).read_text().splitlines() for d in dirs)
        if x == y:
            print(f"{name}: identical ({len(x)} lines)")
            continue
        same = False
        i = next((k for k, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
        print(f"{name}: DIFFERS at line {i + 1}\n  {revs[0]}: {x[i] if i < len(x) else '<end>'}\n"
              f"  {revs[1]}: {y[i] if i < len(y) else '<end>'}")  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
