"""An active-learning campaign: the next experiments to run, measured results back, status.

    python -m alloy_hydra.campaign init DIR --cards cards.csv --target YS=260 --target UTS=320
        [--target FractureEL=12] [--family AA5xxx] [--casting DC] [--max-cost 2.0] [--explore 0.4]
        [--override regressor=operon ...]
    python -m alloy_hydra.campaign recommend DIR [--batch 5] [-o next.csv]
    python -m alloy_hydra.campaign add DIR measured.csv
    python -m alloy_hydra.campaign status DIR

`recommend` retrains on every card the campaign has (the normal pipeline, one run per target under
DIR/rounds/) and writes the batch as data cards in the lab's schema with `why` and the predictions beside them.
`add` takes the measured cards (a `failed` column marks a failed experiment).
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from ..campaign import Campaign, Goal
from ..config import CampaignConfig
from ..errors import AlloyHydraError


def _pairs(items, what: str) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            raise AlloyHydraError(f"{what} {item!r}: write NAME=NUMBER, e.g. YS=260") from None
        if not sep:
            raise AlloyHydraError(f"{what} {item!r}: write NAME=NUMBER, e.g. YS=260")
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.campaign", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init", help="start a campaign from cards")
    p.add_argument("dir")
    p.add_argument("--cards", required=True)
    p.add_argument("--target", action="append", required=True, help="NAME=VALUE, e.g. YS=260 (repeat)")
    p.add_argument("--tolerance", action="append", help="NAME=VALUE (default: design.tolerance)")
    p.add_argument("--min", action="append", help="NAME=VALUE: a minimum a recipe must reach")
    p.add_argument("--family", default=None)
    p.add_argument("--casting", default=None)
    p.add_argument("--max-cost", type=float, default=None)
    p.add_argument("--explore", type=float, default=CampaignConfig.explore, help="share of each batch that explores")
    p.add_argument("--diversity", type=float, default=CampaignConfig.diversity, help="recipes at least this far apart")
    p.add_argument("--override", action="append", help="a run.py override for training and design (repeat)")
    p.add_argument("--seed", type=int, default=CampaignConfig.seed)
    p.add_argument("--registry", default=None, help="publish every round's models to this registry")
    p = sub.add_parser("recommend", help="the next batch of experiments")
    p.add_argument("dir")
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("-o", "--output", default=None)
    p = sub.add_parser("add", help="measured cards back into the campaign")
    p.add_argument("dir")
    p.add_argument("cards")
    p.add_argument("--allow-new", action="store_true", help="accept cards that are no pending experiment")
    p = sub.add_parser("status", help="where the campaign stands")
    p.add_argument("dir")
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        if args.command == "init":
            goal = Goal(
                _pairs(args.target, "--target"),
                tolerance=_pairs(args.tolerance, "--tolerance"),
                minimum=_pairs(args.min, "--min"),
                family=args.family,
                casting=args.casting,
                max_cost=args.max_cost,
            )
            settings = CampaignConfig(args.explore, args.diversity, seed=args.seed, registry=args.registry)
            if args.override:
                settings.overrides = args.override
            camp = Campaign.create(args.dir, args.cards, goal, settings)
            console.print(f"campaign in {camp.path}: {camp.state['n_initial']} cards, targets {camp.state['targets']}")
        elif args.command == "recommend":
            camp = Campaign.load(args.dir)
            batch = camp.recommend(args.batch)
            out = args.output or camp.path / "rounds" / f"r{camp.state['round']}" / "batch.csv"
            batch.to_csv(out, index=False)
            cols = [batch.columns[0], *[c for c in batch.columns if c.startswith("predicted_")], "why"]
            console.print(batch[cols].to_string(index=False))
            console.print(f"round {camp.state['round']}: {len(batch)} recipes -> {out}")
        elif args.command == "add":
            added = Campaign.load(args.dir).add_measurements(args.cards, allow_new=args.allow_new)
            console.print(f"added {added['measured']} measured cards, {added['failed']} failed experiments")
        else:
            print(json.dumps(Campaign.load(args.dir).status(), indent=2))
    except AlloyHydraError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
