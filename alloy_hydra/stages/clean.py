"""Stage clean: the user's cards -> BASE_MASTER.csv, the target's view, rejects and the cleaning report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import clean as cleaning
from ..config import check_data
from ..errors import ConfigError
from ..io import read_cards, write_json
from ..schema import GROUP_COL


@dataclass
class Cleaned:
    master: pd.DataFrame  # every kept card, every property
    view: pd.DataFrame  # the cards with this run's target
    path: Path  # the cards file read


def run(cfg, run_dir: Path, metrics: dict) -> Cleaned:
    check_data(cfg)
    path = cleaning.data_path(cfg.data, cfg.paths.data_dir)
    raw = read_cards(path, delimiter=cfg.data.delimiter)
    result = cleaning.clean(raw, cfg.data, cfg.chem_window, cfg.cleaning, source=path)
    view, view_report = cleaning.make_view(result.master, cfg.target)
    if view.empty:
        raise ConfigError(
            f"no {cfg.target.name} labels left after cleaning {path} "
            f"({result.report['rows_rejected']} of {result.report['rows_in']} rows rejected; "
            f"reasons {result.report['reject_reasons']})"
        )
    targets = list(cfg.data.targets)
    result.master.to_csv(run_dir / "BASE_MASTER.csv", index=False)
    view.to_csv(run_dir / "view.csv", index=False)
    result.rejects.to_csv(run_dir / "rejects.csv", index=False)
    cleaning.coverage(result.master, targets).to_csv(run_dir / "coverage.csv", index=False)
    cleaning.labels_needed(result.master, targets, list(cfg.data.id_columns)).to_csv(
        run_dir / "labels_needed.csv", index=False
    )
    write_json(run_dir / "cleaning_report.json", {**result.report, "view": view_report})
    r = result.report
    metrics.update(
        rows_in=r["rows_in"],
        rows_kept=r["rows_kept"],
        rows_rejected=r["rows_rejected"],
        view_rows=view_report["view_rows"],
        view_groups=int(view[GROUP_COL].nunique()),
        target_clipped=view_report["clipped_low"] + view_report["clipped_high"],
    )
    return Cleaned(result.master, view, path)
