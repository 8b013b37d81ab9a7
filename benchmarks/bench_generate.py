"""Phase 2 speed and memory figures (prints them; not a test).

    python benchmarks/bench_generate.py            # jitter 20k rows + QC statistics, whole-run RSS per generator
    python benchmarks/bench_generate.py --quick    # skip the CTGAN whole run

Goals (issue 4): jitter 20 000 rows <= 0.5 s and QC statistics on them (all but utility) <= 2 s; peak RSS of a
whole jitter run <= 500 MB; CTGAN whole run <= 3 min and <= 2 GB; Gaussian copula <= 20 s.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from alloy_hydra.config import compose  # noqa: E402


def jitter_figures(n_rows: int = 20_000) -> None:
    from alloy_hydra import cards, generate, qc, stages
    from alloy_hydra.schema import GROUP_COL

    cfg = compose(["summary=false"])
    train = stages.execute(cfg, Path(tempfile.mkdtemp()), ["clean", "split"])["split"].train
    schema = cards.schema_of(train, cfg.data)
    table = cards.encode(train, schema, cfg.data)
    n_per_class = -(-n_rows // train[GROUP_COL].nunique())
    best = {}
    for _ in range(3):
        t0 = time.perf_counter()
        gen = generate.Jitter(seed=0).fit(table, train[GROUP_COL], schema)
        synth = gen.sample(n_per_class)
        t1 = time.perf_counter()
        synth, post = generate.postprocess(synth, table, schema, cfg.chem_window)
        t2 = time.perf_counter()
        synth_cards, _ = cards.decode(synth, schema, cfg.data, cfg.cleaning)
        t3 = time.perf_counter()
        qc.evaluate(
            table,
            synth,
            synth_cards,
            schema,
            "YS",
            cfg.chem_window,
            cfg.thresholds,
            post,
            sorted(train[GROUP_COL].unique()),
        )
        t4 = time.perf_counter()
        for k, v in {
            "fit+sample": t1 - t0,
            "postprocess": t2 - t1,
            "decode to cards": t3 - t2,
            "generate total": t3 - t0,
            "qc statistics": t4 - t3,
        }.items():
            best[k] = min(best.get(k, 1e9), v)
    print(f"jitter, {len(synth)} rows after gates ({n_per_class} per class × {train[GROUP_COL].nunique()} classes)")
    for k, v in best.items():
        print(f"  {k:<18} {v:6.3f} s")


def whole_run(args) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, str(ROOT / "run.py"), *args, f"hydra.run.dir={d}", "summary=false"]
        t0 = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(cmd, check=True, capture_output=True)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return time.perf_counter() - t0, max(rss, before) / 1024


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    jitter_figures()
    gens = ["jitter", "gaussiancopula"] + ([] if a.quick else ["ctgan"])
    print("whole runs on the demo view (python run.py generator=...), wall time and peak RSS of the child:")
    for g in gens:
        wall, rss = whole_run([f"generator={g}"])
        print(f"  {g:<15} {wall:7.1f} s   {rss:7.0f} MB")
