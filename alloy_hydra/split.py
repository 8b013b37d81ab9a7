"""Group-aware split of the real view into train groups and holdout groups (never seen by anything fitted)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from .schema import GROUP_COL


def split_groups(view: pd.DataFrame, holdout_fraction: float, seed: int):
    """Returns (train, holdout, info). Every group is wholly on one side."""
    groups = view[GROUP_COL].to_numpy()
    if len(np.unique(groups)) < 2:
        raise ValueError("need at least two groups to split")
    if holdout_fraction == 0:  # every card trains (a campaign: validation by grouped CV only)
        train_idx, hold_idx = np.arange(len(view)), np.arange(0)
    else:
        gss = GroupShuffleSplit(n_splits=1, test_size=holdout_fraction, random_state=seed)
        train_idx, hold_idx = next(gss.split(view, groups=groups))
    train, holdout = view.iloc[train_idx].reset_index(drop=True), view.iloc[hold_idx].reset_index(drop=True)
    info = {
        "seed": seed,
        "holdout_fraction": holdout_fraction,
        "group_column": GROUP_COL,
        "n_train_rows": len(train),
        "n_holdout_rows": len(holdout),
        "n_train_groups": int(train[GROUP_COL].nunique()),
        "n_holdout_groups": int(holdout[GROUP_COL].nunique()),
        "train_groups": sorted(train[GROUP_COL].unique().tolist()),
        "holdout_groups": sorted(holdout[GROUP_COL].unique().tolist()),
    }
    assert not set(info["train_groups"]) & set(info["holdout_groups"])
    return train, holdout, info
