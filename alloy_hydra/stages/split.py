"""Stage split: hold out whole groups (alloys) that no generator or regressor sees."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io import write_json
from ..schema import GROUP_COL
from ..split import split_groups
from .clean import Cleaned


@dataclass
class Split:
    train: pd.DataFrame  # real cards of the train groups
    holdout: pd.DataFrame  # real cards of the held-out groups


def run(cfg, run_dir: Path, metrics: dict, clean: Cleaned) -> Split:
    view = clean.view
    if view[GROUP_COL].nunique() < 5:
        raise ConfigError(f"only {view[GROUP_COL].nunique()} groups in the view: too few to hold any out")
    train, holdout, info = split_groups(view, cfg.split.holdout_fraction, cfg.split.seed)
    write_json(run_dir / "split.json", info)
    hold = set(info["holdout_groups"])
    view.assign(split=np.where(view[GROUP_COL].isin(hold), "holdout", "train")).to_csv(
        run_dir / "view.csv", index=False
    )
    metrics.update({k: info[k] for k in ("n_train_rows", "n_holdout_rows", "n_train_groups", "n_holdout_groups")})
    return Split(train, holdout)
