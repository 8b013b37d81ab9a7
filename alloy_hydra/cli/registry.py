"""The model registry: publish trained models as versions, list them, show a model card, set an alias.

    python -m alloy_hydra.registry [--registry models] publish RUN_OR_SWEEP_DIR [--alias champion]
    python -m alloy_hydra.registry list
    python -m alloy_hydra.registry show YS[:VERSION | @ALIAS]
    python -m alloy_hydra.registry alias YS:VERSION ALIAS
    python -m alloy_hydra.registry demo [--seeds 2] [-- run.py overrides]

`demo` trains YS, UTS and FractureEL on the embedded demo cards with the documented design-assistant settings
(the default model, a committee of seeds per property: `python run.py -m target=YS,UTS,FractureEL seed=...`)
and publishes them as `champion`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..config import RegistryConfig
from ..errors import AlloyHydraError
from ..expr import ModelFileError
from ..registry import Registry, parse

DEMO_TARGETS = ("YS", "UTS", "FractureEL")


def run_py() -> Path:
    """run.py of this checkout (the registry's demo trains with the same entry point as everything else)."""
    path = Path(__file__).resolve().parents[2] / "run.py"
    if not path.exists():
        raise AlloyHydraError(f"{path} not found: the demo registry is built from a source checkout (pip install -e .)")
    return path


# two seeds per property: a committee, trained in minutes (issue 31: the README's commands <= 5 min); the
# design assistant's hit rate in benchmarks/README.md is for committees of four (--seeds 4, twice the time)
DEMO_SEEDS = 2


def build_demo(registry: Registry, seeds: int = DEMO_SEEDS, overrides=(), sweep_dir=None) -> list[tuple[str, int]]:
    """Train the demo targets (a sweep through run.py, its progress on screen) and publish them as champion."""
    import datetime as dt

    sweep_dir = Path(sweep_dir or registry.path / ".build" / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    cmd = [
        sys.executable,
        str(run_py()),
        "-m",
        f"target={','.join(DEMO_TARGETS)}",
        f"seed={','.join(str(s) for s in range(1, seeds + 1))}",
        "summary=false",
        f"hydra.sweep.dir={sweep_dir}",
        *overrides,
    ]
    print(f"training {len(DEMO_TARGETS)} targets x {seeds} seeds into {sweep_dir} ...", flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise AlloyHydraError(f"training the demo models failed (exit {proc.returncode}); see {sweep_dir}")
    return registry.publish(sweep_dir, alias="champion")


def _rows_table(rows: list[dict]) -> Table:
    table = Table(title="registry", title_justify="left")
    for col in ("target", "ver", "aliases", "method", "n", "R²", "MAE", "physics"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["target"],
            str(r["version"]),
            r["aliases"] or "—",
            str(r["method"]),
            str(r["members"]),
            "—" if r["holdout_r2"] is None else f"{r['holdout_r2']:.3f}",
            "—" if r["holdout_mae"] is None else f"{r['holdout_mae']:.1f}",
            {True: "pass", False: "FAIL"}.get(r["physics_pass"], "n/a"),
        )
    return table


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        extra, argv = argv[argv.index("--") + 1 :], argv[: argv.index("--")]
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.registry", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--registry", default=RegistryConfig.path, help=f"the registry folder (default: {RegistryConfig.path})"
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish", help="publish a run dir's model or a sweep's chosen models")
    p.add_argument("source")
    p.add_argument("--alias", default=None)
    p.add_argument("--combine", default="committee", choices=("committee", "best"))
    sub.add_parser("list", help="every version")
    p = sub.add_parser("show", help="a version's model card (TARGET, TARGET:VERSION, TARGET@ALIAS)")
    p.add_argument("spec")
    p = sub.add_parser("alias", help="point an alias at a version (TARGET:VERSION ALIAS)")
    p.add_argument("spec")
    p.add_argument("name")
    p = sub.add_parser("demo", help="train YS, UTS, FractureEL on the demo cards and publish them as champion")
    p.add_argument("--seeds", type=int, default=DEMO_SEEDS, help="seeds per property (a committee)")
    p.add_argument("--force", action="store_true", help="train and publish again when champions exist")
    args = ap.parse_args(argv)
    console = Console()
    reg = Registry(args.registry)
    try:
        if args.command == "publish":
            for target, number in reg.publish(args.source, args.alias, args.combine):
                console.print(f"published {target}:{number}" + (f" as {args.alias}" if args.alias else ""))
        elif args.command == "demo":
            have = [t for t in DEMO_TARGETS if "champion" in reg.index()["targets"].get(t, {}).get("aliases", {})]
            if len(have) == len(DEMO_TARGETS) and not args.force:
                console.print(f"{reg.path} already has champions for {', '.join(have)} (--force trains new ones)")
                console.print(_rows_table(reg.rows()))
                return 0
            for target, number in build_demo(reg, args.seeds, extra):
                console.print(f"published {target}:{number} as champion")
            console.print(_rows_table(reg.rows()))
        elif args.command == "list":
            rows = reg.rows()
            if not rows:
                console.print(f"{reg.path}: no published models (python -m alloy_hydra.registry demo builds some)")
            else:
                console.print(_rows_table(rows))
        elif args.command == "show":
            target, ref = parse(args.spec)
            number = reg.resolve(target, ref)
            folder = reg.verify(target, number)
            print(json.dumps(json.loads((folder / "card.json").read_text()), indent=2))
        elif args.command == "alias":
            target, ref = parse(args.spec)
            reg.alias(target, ref, args.name)
            console.print(f"{args.name} -> {target}:{reg.resolve(target, args.name)}")
    except (AlloyHydraError, ModelFileError) as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
