"""Predict a run's target for new data cards.

    python -m alloy_hydra.predict RUN_DIR cards.csv [-o predictions.csv]

The cards are read in the run's data schema (its .hydra/config.yaml), cleaned and featurised by the same code
as the training data, and scored with RUN_DIR/model.json (JSON, evaluated with numpy). Every input row is in
the output with its original columns (measured targets are carried through) plus `<target>_pred`,
`<target>_std` (1σ), `in_domain` with `domain_reason` (why not, in words), `domain_distance`, and `rejected_reason`
for rows cleaning rejects.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from .. import assistant
from ..config import load_run_config
from ..errors import AlloyHydraError
from ..expr import ModelFileError
from ..io import read_cards
from ..model import Model
from ..schema import ROW_COL


def predict_cards(run_dir, cards_path) -> pd.DataFrame:
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if not (run_dir / "model.json").exists():
        raise AlloyHydraError(f"{run_dir} has no model.json (did the run include the train stage?)")
    model = Model.load(run_dir / "model.json")
    raw = read_cards(cards_path, delimiter=cfg.data.delimiter)
    return assistant.predict_cards(raw, cfg, model, source=cards_path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.predict", description=__doc__.splitlines()[1])
    ap.add_argument("run_dir")
    ap.add_argument("cards")
    ap.add_argument("-o", "--output", default=None, help="CSV to write (default: <cards>_predictions.csv)")
    args = ap.parse_args(argv)
    console = Console()
    try:
        out = predict_cards(args.run_dir, args.cards)
    except (AlloyHydraError, ModelFileError) as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    dest = Path(args.output or Path(args.cards).with_name(Path(args.cards).stem + "_predictions.csv"))
    out.to_csv(dest, index=False)
    cfg = load_run_config(Path(args.run_dir))
    target = [c for c in out.columns if c.endswith("_pred")][0][: -len("_pred")]
    table = Table(title=f"{target} predictions ({len(out)} cards) -> {dest}")
    ids = [c for c in cfg.data.id_columns if c in out.columns][:3]
    # ± 1σ, as the recipes, the service and the page show it (one convention everywhere)
    for c in ["row", *ids, f"{target} ± σ", "in domain", "why not in domain / rejected"]:
        table.add_column(c)
    for _, r in out.head(25).iterrows():
        pred = "—" if pd.isna(r[f"{target}_pred"]) else f"{r[f'{target}_pred']:.1f} ± {r[f'{target}_std']:.1f}"
        note = r["rejected_reason"] or r.get("domain_reason", "")
        table.add_row(str(r[ROW_COL]), *[str(r[c]) for c in ids], pred, str(r["in_domain"]), note)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
