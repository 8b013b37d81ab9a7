"""The simulated campaign of bench_campaign.py with a BayBE campaign instead (an optional comparison: BayBE pulls
botorch + gpytorch, so it runs in a separate venv and is never a dependency).

    python3 -m venv /work/baybe_venv && . /work/baybe_venv/bin/activate
    pip install torch==2.13.0 && pip install baybe && pip install -e .
    OMP_NUM_THREADS=1 python benchmarks/bench_campaign_baybe.py [--seeds 1 2 3 4 5] [--rounds 6] [--batch 5]
        [--restarts 10] [--raw-samples 64] [--jobs 1]

The same start cards, targets, tolerances, rounds, batch and ground truth (with noise) as bench_campaign.py, and
the same variables: the design space of the start cards (design.Space, casting DC), its decision vectors given
to BayBE as parameters (elements in wt%, process numbers and schedule steps as positions within the range of
their stratum, categorical levels, step counts). The start cards enter as measurements (Space.encode). Targets:
BayBE's bell-shaped match on each property (sigma = the tolerance), combined by its desirability objective;
its default recommender (a Gaussian process with Botorch). What BayBE does not get: the design stage's
constraints (cost, adequate schedules, in domain): its recipes are cast whatever they are, and the share that
breaks a constraint is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_campaign import GOAL, SETTINGS, TARGETS, distances, start_cards, summary_of  # noqa: E402

from alloy_hydra.config import CampaignConfig  # noqa: E402


def recipes_table(space, evaluator, X: np.ndarray) -> pd.DataFrame:
    """Decision vectors -> the columns design.as_raw_cards reads (as the design stage's ranked table has them)."""
    ev = evaluator(X, with_std=True)  # with the cards as strings (schedules), as the ranking has them
    c = ev.cards
    out = pd.DataFrame({"rank": np.arange(1, len(X) + 1)})
    for el in [*space.schema.elements, space.schema.balance]:
        out[el] = np.asarray(c[el], float).round(3)
    for col in [*space.data.categoricals, *space.schema.numeric]:
        out[col] = np.asarray(c[col])
    for name in space.schema.schedules:
        for col in (f"{name}_schedule", f"{name}_type"):
            if col in c:
                out[col] = np.asarray(c[col])
    return out, (ev.G <= 0).all(axis=1) if ev.G.shape[1] else np.ones(len(X), bool)


def run_seed(args) -> dict:
    seed, rounds, batch, restarts, raw_samples = args
    from baybe import Campaign as BayBECampaign
    from baybe.objectives import DesirabilityObjective
    from baybe.parameters import CategoricalParameter, NumericalContinuousParameter, NumericalDiscreteParameter
    from baybe.recommenders import BotorchRecommender
    from baybe.searchspace import SearchSpace
    from baybe.targets import NumericalTarget

    from alloy_hydra import design, ground_truth
    from alloy_hydra.campaign import Campaign
    from alloy_hydra.stages.design import space_for

    with tempfile.TemporaryDirectory() as tmp:
        camp = Campaign.create(
            Path(tmp) / "c", start_cards(seed), GOAL, CampaignConfig(0.0, overrides=SETTINGS, seed=seed)
        )
        models, cfg, master = camp.train()
    master = design.family_cards(master, cfg.design.family, cfg.design.families)
    space = space_for(cfg, master, cfg.data)
    evaluator = design.Evaluator(space, models, cfg.design, cfg.cleaning, dict(TARGETS))
    params, fixed = [], {}
    for i, v in enumerate(space.vars):
        if v.hi <= v.lo:
            fixed[i] = v.lo
        elif v.kind == "category":
            params.append(CategoricalParameter(v.name, values=[str(j) for j in range(len(v.levels))]))
        elif v.kind == "count":
            params.append(
                NumericalDiscreteParameter(v.name, values=tuple(float(k) for k in range(int(v.lo), int(v.hi) + 1)))
            )
        else:
            params.append(NumericalContinuousParameter(v.name, bounds=(float(v.lo), float(v.hi))))
    names = [p.name for p in params]
    index = {v.name: i for i, v in enumerate(space.vars)}
    tol = {t: cfg.design.tolerance[t] for t in TARGETS}
    objective = DesirabilityObjective([NumericalTarget.match_bell(t, v, sigma=tol[t]) for t, v in TARGETS.items()])
    recommender = BotorchRecommender(n_restarts=restarts, n_raw_samples=raw_samples)  # the start cards exist
    bay = BayBECampaign(SearchSpace.from_product(params), objective, recommender=recommender)

    def as_frame(X: np.ndarray, y: pd.DataFrame) -> pd.DataFrame:
        df = pd.DataFrame({n: X[:, index[n]] for n in names})
        for p in params:
            if isinstance(p, CategoricalParameter):
                df[p.name] = df[p.name].round().astype(int).astype(str)
        return pd.concat([df.reset_index(drop=True), y.reset_index(drop=True)], axis=1)

    print(f"seed {seed}: {len(params)} BayBE parameters, {len(fixed)} fixed", flush=True)
    X0, ok = space.encode(space.table)
    labels = master.reset_index(drop=True)[list(TARGETS)].astype(float)
    keep = ok & labels.notna().all(axis=1).to_numpy()
    bay.add_measurements(as_frame(X0[keep], labels[keep]))
    rng = np.random.default_rng(1000 + seed)
    dist, broke, seconds = [], 0, []
    for _ in range(rounds):
        t0 = time.perf_counter()
        rec = bay.recommend(batch_size=batch)
        seconds.append(time.perf_counter() - t0)
        X = np.tile(np.array([fixed.get(i, 0.0) for i in range(len(space.vars))]), (len(rec), 1))
        for n in names:
            X[:, index[n]] = rec[n].astype(float).to_numpy()
        table, feasible = recipes_table(space, evaluator, X)
        broke += int((~feasible).sum())
        measured = ground_truth.cast(design.as_raw_cards(table, cfg.data, prefix="baybe"), cfg, rng)
        d = distances(measured, cfg)
        dist += list(d)
        y = pd.DataFrame({t: pd.to_numeric(measured[cfg.data.targets[t]], errors="coerce") for t in TARGETS})
        good = y.notna().all(axis=1).to_numpy()
        bay.add_measurements(as_frame(X[good], y[good]))
    out = summary_of(np.array(dist), batch, rounds)
    out.update(broke_constraints=broke, recommend_s=statistics.median(seconds), start_measurements=int(keep.sum()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--restarts", type=int, default=10, help="Botorch's acquisition restarts (BayBE default 10)")
    ap.add_argument("--raw-samples", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args()
    n = a.rounds * a.batch
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results = []
    with ProcessPoolExecutor(a.jobs) as pool:
        jobs = {pool.submit(run_seed, (s, a.rounds, a.batch, a.restarts, a.raw_samples)): s for s in a.seeds}
        for done in as_completed(jobs):  # each seed as it ends (a BayBE seed takes many minutes)
            s, r = jobs[done], done.result()
            results.append(r)
            print(
                f"seed {s}: first hit {r['first_hit'] or f'>{n}'}, hits {r['hits']}, best by round "
                + " ".join(f"{b:.2f}" for b in r["best_by_round"])
                + f"; {r['broke_constraints']} of {n} recipes break a design constraint; "
                f"recommend median {r['recommend_s']:.1f} s; {r['start_measurements']} start cards",
                flush=True,
            )
    firsts = [r["first_hit"] or n + 1 for r in results]
    med = statistics.median(firsts)
    best = np.median([r["best_by_round"] for r in results], axis=0)
    print(
        f"BayBE     experiments to first hit: median {med if med <= n else f'>{n}'} (per seed {firsts}); "
        f"hits after {a.rounds} rounds: median {statistics.median(r['hits'] for r in results)}; "
        f"median best distance by round: {' '.join(f'{b:.2f}' for b in best)}"
    )


if __name__ == "__main__":
    main()
