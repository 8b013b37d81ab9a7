"""A simulated campaign on the demo ground truth (issue 22): does exploring find the target region faster?

    OMP_NUM_THREADS=1 python benchmarks/bench_campaign.py [--seeds 1 2 3 4 5] [--rounds 6] [--batch 5] [--jobs 2]

Start: the demo cards without every card within a generous window of the targets (YS within 40 MPa of 260 or
UTS within 40 MPa of 320), then a seeded 70 % of the remaining alloy groups: the target region is poorly covered
and each seed starts from different cards. Targets YS 260 / UTS 320 / FractureEL 12 (±10 MPa, ±15 MPa, ±2 %),
DC, max cost 2.0. An experiment is "cast" by the ground truth with its measurement noise (ground_truth.cast);
a hit is a measured card within tolerance of all three targets.

Arms, the same number of experiments (rounds x batch):
  campaign  rounds of `batch` recipes, retrained between rounds, explore = 0.4 (2 of 5 explore)
  one-shot  the design ranking of the starting models, all experiments at once, no exploration (explore = 0)
  random    random feasible recipes (NSGA-II's budget drawn at random, constraints and the campaign's domain
            rule applied), in random order
Prints per arm: experiments until the first hit (median over seeds; a seed without a hit counts as more than
all), hits after all rounds, and the median best distance (worst target's |measured - target| / tolerance)
after each round.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import intervals  # benchmarks/intervals.py
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alloy_hydra.campaign import Goal  # noqa: E402
from alloy_hydra.config import CampaignConfig  # noqa: E402

TARGETS = {"YS": 260.0, "UTS": 320.0, "FractureEL": 12.0}
SETTINGS = ["regressor=hinge", "generator=none", "qc.plots=false", "summary=false"]
GOAL = Goal(TARGETS, casting="DC", max_cost=2.0)
EXTRA = ("why", "in_domain", "retest_of")
WINDOW = 70  # MPa: every card this close to the YS or the UTS target is dropped from the start


def start_cards(seed: int) -> pd.DataFrame:
    from alloy_hydra import demo

    cards = pd.read_csv(demo.demo_path(), dtype=str, keep_default_na=False)
    ys, uts = (pd.to_numeric(cards[c], errors="coerce") for c in ("YS (MPa)", "UTS (MPa)"))
    far = cards[~(((ys - 260).abs() <= WINDOW) | ((uts - 320).abs() <= WINDOW))]
    groups = (far["file_name"] + "|" + far["card"]).unique()
    keep = np.random.default_rng(seed).choice(groups, size=int(0.7 * len(groups)), replace=False)
    return far[(far["file_name"] + "|" + far["card"]).isin(keep)]


def recipe(batch: pd.DataFrame) -> pd.DataFrame:
    return batch[[c for c in batch.columns if c not in EXTRA and not c.startswith("predicted_")]]


def distances(measured: pd.DataFrame, cfg) -> np.ndarray:
    from alloy_hydra.campaign import measured_distance

    tol = {t: cfg.design.tolerance[t] for t in TARGETS}
    out = []
    for _, row in measured.iterrows():  # one per card, in order (a card the cleaning rejects counts as a miss)
        d = measured_distance(row.to_frame().T, cfg, TARGETS, tol)
        out.append(float(d[0]) if len(d) else np.inf)
    return np.array(out)


def summary_of(dist: np.ndarray, batch: int, rounds: int) -> dict:
    hits = np.flatnonzero(dist <= 1)
    return {
        "first_hit": int(hits[0] + 1) if len(hits) else None,
        "hits": int(len(hits)),
        "best_by_round": [float(np.min(dist[: batch * (r + 1)])) for r in range(rounds)],
    }


def arm_campaign(seed, rounds, batch, explore, workdir) -> dict:
    from alloy_hydra import ground_truth
    from alloy_hydra.campaign import Campaign

    camp = Campaign.create(
        Path(workdir) / f"campaign_{explore}",
        start_cards(seed),
        GOAL,
        CampaignConfig(explore, overrides=SETTINGS, seed=seed),
    )
    cfg = camp.config()
    rng = np.random.default_rng(1000 + seed)
    dist = []
    for _ in range(rounds):
        measured = ground_truth.cast(recipe(camp.recommend(batch)), cfg, rng)
        dist += list(distances(measured, cfg))
        camp.add_measurements(measured)
    return summary_of(np.array(dist), batch, rounds)


def arm_one_shot(seed, rounds, batch, workdir) -> dict:
    from alloy_hydra import ground_truth
    from alloy_hydra.campaign import Campaign

    camp = Campaign.create(
        Path(workdir) / "one_shot", start_cards(seed), GOAL, CampaignConfig(0.0, overrides=SETTINGS, seed=seed)
    )
    cfg = camp.config()
    measured = ground_truth.cast(recipe(camp.recommend(batch * rounds)), cfg, np.random.default_rng(1000 + seed))
    return summary_of(distances(measured, cfg), batch, rounds)


def arm_random(seed, rounds, batch, workdir) -> dict:
    from alloy_hydra import design, ground_truth
    from alloy_hydra.campaign import Campaign
    from alloy_hydra.stages.design import recommend

    camp = Campaign.create(
        Path(workdir) / "random", start_cards(seed), GOAL, CampaignConfig(0.0, overrides=SETTINGS, seed=seed)
    )
    models, cfg, master = camp.train()
    # the same domain rule as the campaign's pool (design.domain=penalise): random among what the others choose from
    cfg = dataclasses.replace(
        cfg,
        optimizer=dataclasses.replace(cfg.optimizer, _target_="alloy_hydra.design.RandomSearch", name="random"),
        design=dataclasses.replace(cfg.design, domain="penalise", top=100_000),
    )
    out = recommend(cfg, models, cfg.data, cfg.cleaning, master, progress=lambda *_: None)
    pool = out.candidates
    rng = np.random.default_rng(seed)
    pick = pool.iloc[rng.permutation(len(pool))[: batch * rounds]].assign(rank=lambda t: np.arange(1, len(t) + 1))
    cards = design.as_raw_cards(pick, cfg.data, prefix="random")
    measured = ground_truth.cast(cards, cfg, np.random.default_rng(1000 + seed))
    return summary_of(distances(measured, cfg), batch, rounds)


def run_seed(args) -> dict:
    seed, rounds, batch = args
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "seed": seed,
            "campaign": arm_campaign(seed, rounds, batch, 0.4, tmp),
            "one-shot": arm_one_shot(seed, rounds, batch, tmp),
            "random": arm_random(seed, rounds, batch, tmp),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    n = a.rounds * a.batch
    with ProcessPoolExecutor(a.jobs) as pool:
        results = list(pool.map(run_seed, [(s, a.rounds, a.batch) for s in a.seeds]))
    print(f"{len(a.seeds)} seeds, {a.rounds} rounds x {a.batch} = {n} experiments per arm")
    print("| seed | " + " | ".join(f"{arm} first hit / hits" for arm in ("campaign", "one-shot", "random")) + " |")
    for r in results:
        cells = [f"{r[arm]['first_hit'] or f'>{n}'} / {r[arm]['hits']}" for arm in ("campaign", "one-shot", "random")]
        print(f"| {r['seed']} | " + " | ".join(cells) + " |")
    for arm in ("campaign", "one-shot", "random"):
        firsts = [r[arm]["first_hit"] or n + 1 for r in results]  # no hit counts as n + 1
        best = np.median([r[arm]["best_by_round"] for r in results], axis=0)
        print(
            f"{arm:<9} experiments to first hit ({n + 1} = none): {intervals.text(firsts, np.median, 'median', '.1f')}"
            f" (per seed {firsts}); hits after {a.rounds} rounds: "
            f"{intervals.text([r[arm]['hits'] for r in results], np.mean, 'mean', '.1f')}; "
            f"median best distance by round: {' '.join(f'{b:.2f}' for b in best)}"
        )
    for other in ("one-shot", "random"):  # paired by seed: the same start cards
        diff = [r["campaign"]["hits"] - r[other]["hits"] for r in results]
        print(f"hits, campaign - {other} (paired by seed): {intervals.text(diff, np.mean, 'mean', '.1f')}")


if __name__ == "__main__":
    main()
