"""The evaluation contract (issue 28, item 1; docs/methods.md "Evaluation contract"): a committee's members share
one holdout none of them trained on, the registry card reports the committee's own figures there, and the choice
of a model is made on grouped CV, never on the holdout."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import compose

from alloy_hydra import selection
from alloy_hydra.model import Model
from alloy_hydra.schema import GROUP_COL


def groups_of(run: Path, part: str) -> set:
    view = pd.read_csv(run / "view.csv", dtype={GROUP_COL: str})
    return set(view.loc[view["split"] == part, GROUP_COL])


def test_no_committee_member_trained_on_a_holdout_group(demo_registry):
    sweep = demo_registry.path.parent / "sweep"
    committees = selection.pick_runs(sweep)
    assert sorted(committees) == ["FractureEL", "UTS", "YS"]
    for target, runs in committees.items():
        assert len(runs) == 2, target  # seeds 1 and 2: a committee
        held = [set(map(str, json.loads((r / "split.json").read_text())["holdout_groups"])) for r in runs]
        for run in runs:
            trained = groups_of(run, "train")
            for h in held:
                assert h and not trained & h, f"{target}: {run.name} trained on held-out groups {sorted(trained & h)}"


def test_the_card_reports_the_committee_on_its_shared_holdout(demo_registry):
    v = demo_registry.load("YS", "champion")
    card = v.card
    assert card["metrics_of"] == "committee on the shared holdout" and card["metrics"]["members"] == 2
    runs = [Path(m["run"]) for m in card["members"]]
    view = pd.read_csv(runs[0] / "view.csv")
    hold = view[view["split"] == "holdout"].reset_index(drop=True)
    mean = np.mean([Model.load(r / "model.json").predict(hold)[0] for r in runs], axis=0)
    mae = float(np.mean(np.abs(mean - hold["YS"].to_numpy(float))))
    assert abs(card["metrics"]["holdout_mae"] - mae) < 1e-6
    assert len(hold) == card["metrics"]["n_holdout_rows"] > 10


def test_the_split_seed_is_apart_from_the_model_seed():
    assert compose(["seed=1"]).split.seed == compose(["seed=2"]).split.seed
    assert compose(["split.seed=3"]).split.seed == 3


def test_the_choice_is_made_on_cv_not_on_the_holdout():
    runs = pd.DataFrame(
        [
            {"target": "YS", "method": "hinge", "physics_pass": True, "cv_mae": 12.0, "holdout_r2": 0.95},
            {"target": "YS", "method": "operon", "physics_pass": True, "cv_mae": 10.0, "holdout_r2": 0.80},
        ]
    )
    assert selection.choose(runs)["chosen"].tolist() == [False, True]


def test_no_holdout_means_every_card_trains(tmp_path):
    from alloy_hydra import split as split_mod

    view = pd.DataFrame({GROUP_COL: list("aabbccdd"), "y": range(8)})
    train, hold, info = split_mod.split_groups(view, 0.0, 0)
    assert len(train) == 8 and not len(hold) and info["holdout_groups"] == []


def test_compare_reports_the_committee_on_its_shared_holdout(demo_registry):
    from alloy_hydra.cli import compare

    sweep = demo_registry.path.parent / "sweep"
    ys = [r for r in selection.pick_runs(sweep)["YS"]]
    table = compare.compare(ys)
    assert len(table) == 3 and table["run"].iat[-1] == "committee of 2 (seed 1, 2)"
    card = demo_registry.load("YS", "champion").card["metrics"]
    assert abs(table["metric:holdout_mae"].iat[-1] - card["holdout_mae"]) < 1e-9  # the card's committee figure
    assert table["metric:holdout_mae"].iat[-1] != table["metric:holdout_mae"].iat[0]  # not one member's
