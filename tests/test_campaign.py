"""The active-learning campaign: a tiny campaign end to end on the demo ground truth."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from alloy_hydra import campaign, clean, demo, ground_truth
from alloy_hydra.config import CampaignConfig, compose

TINY = ["regressor=hinge", "generator=none", "debug=fast", "optimizer.pop_size=30", "optimizer.n_gen=10"]
TARGETS = {"YS": 260.0, "UTS": 320.0, "FractureEL": 12.0}
ELEMENTS = ["Si", "Fe", "Cu", "Mn", "Mg", "Cr", "Ni", "Zn", "Ti", "Zr", "Sc", "Other", "Al"]


def biased_cards() -> pd.DataFrame:
    """The demo cards without any near the targets (the campaign has to find the region)."""
    cards = pd.read_csv(demo.demo_path(), dtype=str, keep_default_na=False)
    ys, uts = (pd.to_numeric(cards[c], errors="coerce") for c in ("YS (MPa)", "UTS (MPa)"))
    return cards[~(((ys - 260).abs() <= 40) | ((uts - 320).abs() <= 40))]


def recipe_cols(batch):
    return [c for c in batch.columns if c not in ("why", "in_domain", "retest_of") and not c.startswith("predicted_")]


def cleaned(batch, cfg):
    raw = batch[recipe_cols(batch)].astype(str).assign(source_row=np.arange(2, len(batch) + 2))
    return clean.clean(raw, cfg.data, cfg.chem_window, cfg.cleaning, source="batch")


def test_a_tiny_campaign_end_to_end(tmp_path):
    cfg = compose()
    goal = campaign.Goal(TARGETS, casting="DC", max_cost=2.0)
    settings = CampaignConfig(explore=0.4, overrides=TINY, registry=str(tmp_path / "models"))
    camp = campaign.Campaign.create(tmp_path / "c", biased_cards(), goal, settings)
    first = camp.recommend(5)
    assert len(first) == 5 and first["file_name"].tolist() == [f"c1-{i}" for i in range(1, 6)]
    # every card it has trains the round's models (no holdout; grouped CV validates)
    split = json.loads((tmp_path / "c" / "rounds" / "r1" / "YS" / "split.json").read_text())
    assert split["n_holdout_rows"] == 0 and split["n_train_rows"] > 50
    # 3 exploit, 2 explore: one of them re-tests the tested card nearest the targets that lacks a label; an exploit
    # slot goes only to a recipe with a real chance (in domain, P >= design.min_p_hit), else it explores and says so
    exploit = first[first["why"].str.startswith("exploit")]
    explore = first[first["why"].str.startswith("explore")]
    assert len(exploit) + len(explore) == 4 and exploit["in_domain"].astype(bool).all()
    assert all(float(w.split("tolerance) ")[1]) >= cfg.design.min_p_hit for w in exploit["why"])
    assert explore["why"].str.contains("in place of an exploit slot").sum() == 3 - len(exploit)
    gap = first[first["why"].str.startswith("label gap")]
    assert len(gap) == 1 and gap["retest_of"].notna().all()
    start = biased_cards().reset_index(drop=True)
    original = start.iloc[int(gap["retest_of"].iat[0])]
    assert (original[["Mg", "Mn", "Casting"]].to_numpy() == gap[["Mg", "Mn", "Casting"]].to_numpy()[0]).all()
    assert (original[["YS (MPa)", "UTS (MPa)", "Fracture EL (%)"]] == "").any()  # it lacks a label
    # every recommendation is a valid card: the cleaning keeps it, Σ = 100, DC, inside the chem window
    result = cleaned(first, cfg)
    assert len(result.master) == 5 and not len(result.rejects)
    assert np.allclose(result.master[ELEMENTS].sum(axis=1), 100, atol=0.05) and (result.master["casting"] == "DC").all()
    # the state round-trips exactly
    again = campaign.Campaign.load(tmp_path / "c")
    assert again.state == camp.state
    text = (tmp_path / "c" / "campaign.json").read_text()
    again.save()
    assert (tmp_path / "c" / "campaign.json").read_text() == text
    # pending experiments are not recommended again
    second = again.recommend(5)
    assert set(second["file_name"]).isdisjoint(first["file_name"]) and len(again.state["pending"]) == 10
    key = lambda b: cleaned(b, cfg).master[ELEMENTS + ["cold_reduction_pct"]].round(2).astype(str).agg("|".join, axis=1)  # noqa: E731
    assert set(key(second)).isdisjoint(set(key(first)))
    # the ground truth "casts" them; one experiment failed; measurements close the pending ones
    measured = ground_truth.cast(first[recipe_cols(first)], cfg, np.random.default_rng(0))
    ys = pd.to_numeric(measured["YS (MPa)"])
    assert ys.notna().all() and (ys > 30).all()
    measured["failed"] = ["", "", "", "", "yes"]
    added = again.add_measurements(measured)
    assert added["measured"] == 4 and added["failed"] == 1
    status = again.status()
    assert status["measured_by_campaign"] == 4 and status["failed"] == 1 and status["round"] == 2
    assert sorted(status["pending"]) == sorted(second["file_name"]) and status["best_distance"] > 0
    assert (tmp_path / "c" / "rounds" / "r2" / "YS" / "model.json").exists()
    # each round's retrained models are published: the registry holds the models' history
    from alloy_hydra.registry import Registry

    reg = Registry(tmp_path / "models")
    assert reg.targets() == sorted(TARGETS) and reg.resolve("YS") == 2
    assert [reg.load("UTS", v).card["source"].split("/")[-2:] for v in (1, 2)] == [["r1", "UTS"], ["r2", "UTS"]]


def test_the_campaign_commands(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "alloy_hydra.campaign", *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True)  # fmt: skip

    biased_cards().to_csv(tmp_path / "cards.csv", index=False)
    d = tmp_path / "c"
    overrides = [a for o in TINY for a in ("--override", o)]
    proc = cli("init", d, "--cards", tmp_path / "cards.csv", "--target", "YS=260", "--casting", "DC", *overrides)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cli("recommend", d, "--batch", "3", "-o", tmp_path / "next.csv")
    assert proc.returncode == 0 and "round 1: 3 recipes" in proc.stdout, proc.stdout + proc.stderr
    batch = pd.read_csv(tmp_path / "next.csv", dtype=str, keep_default_na=False)
    cast = ground_truth.cast(batch[recipe_cols(batch)], compose(), np.random.default_rng(1))
    cast.to_csv(tmp_path / "measured.csv", index=False)
    assert cli("add", d, tmp_path / "measured.csv").returncode == 0
    status = json.loads(cli("status", d).stdout)
    assert status["measured_by_campaign"] == 3 and status["pending"] == []
    for args in (("status", tmp_path / "nowhere"), ("init", tmp_path / "x", "--cards", tmp_path / "cards.csv",
                                                    "--target", "YS:260")):  # fmt: skip
        proc = cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("explore", [-0.1, 1.5])
def test_the_dial_is_checked(tmp_path, explore):
    with pytest.raises(campaign.CampaignError, match="explore"):
        settings = CampaignConfig(explore=explore, overrides=TINY)
        campaign.Campaign.create(tmp_path / "c", biased_cards(), campaign.Goal({"YS": 260}), settings)


def test_a_recipe_near_a_tested_or_pending_card_is_not_proposed_again():
    """Distance in the design variables, not string equality: a candidate a hair away from a tested card is that
    recipe again; the same composition on another casting route is a different recipe."""
    rng = np.random.default_rng(0)
    pool = pd.DataFrame({"Mg": rng.uniform(1, 6, 50), "Mn": rng.uniform(0, 1, 50), "casting": ["DC", "CC"] * 25})
    cards = pool.iloc[[3, 10]].copy()
    cards[["Mg", "Mn"]] += 1e-3  # a rounding apart: not string-equal, the same recipe
    Z = campaign._standardise(pool, ["Mg", "Mn"], cats=["casting"])
    near = campaign._near_cards(pool, cards, ["Mg", "Mn"], Z, campaign.REPEAT, ["casting"])
    assert near[3] and near[10] and near.sum() < len(pool) / 4
    other_route = cards.assign(casting=["CC" if c == "DC" else "DC" for c in cards["casting"]])
    assert not campaign._near_cards(pool, other_route, ["Mg", "Mn"], Z, campaign.REPEAT, ["casting"])[[3, 10]].any()
