"""Recommendations a metallurgist would cast: the design space the cards support, a domain flag and a sigma
that say which predictions miss, data chosen by evidence, an audit that cannot pass vacuously, and a run that
is a function of its config."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import HU, UQ, compose, run_cli

from alloy_hydra import design, physics, selection, stages, train
from alloy_hydra.config import DesignConfig
from alloy_hydra.errors import ConfigError

# --- item 6: the audit cannot pass vacuously -------------------------------------------------------------------


def test_a_physics_check_on_a_feature_the_model_ignores_is_not_applicable():
    rng = np.random.default_rng(0)
    cards = pd.DataFrame({"Mg": rng.uniform(1, 5, 60), "grain_size_um": rng.uniform(10, 60, 60)})
    pert = physics.perturbations(cards, {"Mg": 1, "grain_size_um": -1}, lambda c: c)

    def formula(f):
        return lambda X: f(X).to_numpy(float)

    uses_mg_only = physics.audit(formula(lambda X: 50 + 20 * X["Mg"]), pert)
    by = {c["feature"]: c for c in uses_mg_only["checks"]}
    assert by["grain_size_um"]["applicable"] is False and by["grain_size_um"]["pass"] is None
    assert by["Mg"]["applicable"] and by["Mg"]["pass"]
    assert uses_mg_only["pass"] is True and uses_mg_only["n_applicable"] == 1
    constant = physics.audit(formula(lambda X: 0 * X["Mg"] + 100), pert)
    assert constant["pass"] is None and constant["n_applicable"] == 0  # no verdict, not a pass
    wrong = physics.audit(formula(lambda X: 50 - 20 * X["Mg"]), pert)
    assert wrong["pass"] is False
    assert [selection.physics_rank(v) for v in (True, None, False, "True", float("nan"), 0.0)] == [2, 1, 0, 2, 1, 0]


# --- item 3: sigma that predicts error --------------------------------------------------------------------------


def test_the_sigma_model_learns_where_errors_are_large_and_its_checks_can_fail():
    rng = np.random.default_rng(1)
    n = 600
    gap = rng.uniform(0, 20, n)  # formula vs reference disagreement
    dratio = rng.uniform(0, 2, n)  # distance to the training cards over the domain threshold
    level = rng.uniform(50, 400, n)  # predicted strength
    err = rng.normal(0, 2 + 0.8 * gap, n)  # errors grow where the two model families disagree
    sm = train.fit_sigma(err, np.ones(n, bool), gap, dratio, level)
    assert sm["b_gap"] > 0.4 and sm["b0"] > 0.5 and sm["b_level"] < 0.01
    from alloy_hydra.model import sigma_of

    good = train.sigma_checks(err, sigma_of(sm, n, gap, dratio, level))
    assert good["spearman_sigma_abs_error"] > 0.3 and 0.55 < good["coverage_1sigma"] < 0.8
    assert 0.88 < good["coverage_2sigma"] < 0.99
    flat = train.sigma_checks(err, np.full(n, 1.0))  # a constant sigma says nothing
    assert np.isnan(flat["spearman_sigma_abs_error"]) and flat["coverage_1sigma"] < 0.3


def test_recipes_rank_by_the_chance_to_land_within_tolerance():
    p = design.hit_probability(np.array([100.0, 100.0, 110.0]), np.array([2.0, 20.0, 2.0]), 100.0, 5.0)
    assert p[0] > 0.98 and p[1] < 0.25 and p[2] < 0.01  # the same value, a wider sigma: worse


def test_p_hit_of_several_targets_counts_their_error_correlation():
    """YS and UTS errors move together: P(both within tolerance) is not the product of the two."""
    from scipy.stats import multivariate_normal

    pred = {"YS": np.array([100.0, 95.0, 120.0]), "UTS": np.array([200.0, 190.0, 170.0])}
    std = {"YS": np.array([5.0, 8.0, 5.0]), "UTS": np.array([10.0, 16.0, 10.0])}
    targets, tol = {"YS": 100.0, "UTS": 200.0}, {"YS": 5.0, "UTS": 10.0}
    product = design.hit_probability(pred["YS"], std["YS"], 100, 5) * design.hit_probability(
        pred["UTS"], std["UTS"], 200, 10
    )
    independent = design.joint_hit_probability(pred, std, targets, tol, np.eye(2))
    assert np.allclose(independent, product, atol=3e-3)
    R = np.array([[1.0, 0.8], [0.8, 1.0]])
    joint = design.joint_hit_probability(pred, std, targets, tol, R)
    mvn = multivariate_normal(np.zeros(2), R)
    for i in range(3):  # the exact box probability of the standardised errors
        lo = [(targets[t] - tol[t] - pred[t][i]) / std[t][i] for t in targets]
        hi = [(targets[t] + tol[t] - pred[t][i]) / std[t][i] for t in targets]
        exact = mvn.cdf(hi) - mvn.cdf([lo[0], hi[1]]) - mvn.cdf([hi[0], lo[1]]) + mvn.cdf(lo)
        assert abs(joint[i] - exact) < 3e-3, (i, joint[i], exact)
    assert joint[0] > product[0] + 0.05  # correlated errors: both land together more often
    assert np.array_equal(joint, design.joint_hit_probability(pred, std, targets, tol, R))  # deterministic


def test_the_error_correlation_is_estimated_from_the_cards():
    class Fixed:
        def __init__(self, pred):
            self.pred = pred

        def predict(self, cards):
            return self.pred, np.full(len(cards), 1.0)

    rng = np.random.default_rng(0)
    shared = rng.normal(size=200)
    cards = pd.DataFrame({"YS": shared + 0.3 * rng.normal(size=200), "UTS": shared + 0.3 * rng.normal(size=200)})
    R = design.error_correlation({"YS": Fixed(np.zeros(200)), "UTS": Fixed(np.zeros(200))}, cards)
    assert R.shape == (2, 2) and 0.8 < R[0, 1] < 0.95 and R[0, 0] == 1
    few = design.error_correlation({"YS": Fixed(np.zeros(5)), "UTS": Fixed(np.zeros(5))}, cards.head(5))
    assert np.array_equal(few, np.eye(2))  # too few cards with both labels: no correlation claimed


# --- item 1: design space = what the cards support -------------------------------------------------------------


def _master(n=200, seed=0):
    cfg = compose(["data=demo"])
    from alloy_hydra import clean
    from alloy_hydra.demo import demo_path
    from alloy_hydra.io import read_cards

    res = clean.clean(read_cards(demo_path()), cfg.data, cfg.chem_window, cfg.cleaning, source="demo")
    return cfg, res.master


def test_an_element_few_cards_hold_is_fixed_unless_allowed_and_bounds_come_from_the_cards():
    cfg, master = _master()
    master = master.copy()
    rare = master.index[:4]  # 4 of ~330 cards hold Sc
    master["Sc"] = 0.0
    master.loc[rare, "Sc"] = 0.2
    support = {"min_wt": 0.01, "min_share": 0.05}
    space = design.Space(master, cfg.data, cfg.chem_window, DesignConfig(support=support, quantiles=[0.01, 0.99]))
    sc = space.vars[space.index["Sc"]]
    assert sc.lo == sc.hi == 0.0 and "Sc" in space.unsupported
    mg = space.vars[space.index["Mg"]]
    assert mg.hi == pytest.approx(float(np.quantile(master["Mg"], 0.99)), abs=1e-9)
    assert mg.hi < cfg.chem_window.max["Mg"] and mg.lo > 0  # the cards' range, not the window's
    freed = design.Space(
        master, cfg.data, cfg.chem_window, DesignConfig(support=support, allow=["Sc"], quantiles=[0.0, 1.0])
    )
    assert freed.vars[freed.index["Sc"]].hi == pytest.approx(0.2)


def test_design_family_selects_its_cards_and_unknown_family_or_missing_price_are_config_errors():
    cfg, master = _master()
    fams = dict(cfg.design.families)
    fam = design.family_cards(master, "AA5xxx", fams)
    assert 0 < len(fam) <= len(master) and (fam["Mg"] >= 0.5).all()
    with pytest.raises(ConfigError, match="design.family='AA9xxx'"):
        design.family_cards(master, "AA9xxx", fams)
    with pytest.raises(ConfigError, match="only 0 of"):
        design.family_cards(master, "AA7xxx", fams)  # no Zn-rich card in AA5xxx data
    space = design.Space(master, cfg.data, cfg.chem_window, cfg.design)
    weights = {k: v for k, v in cfg.design.cost_weights.items() if k != "Mg"}
    with pytest.raises(ConfigError, match=r"no price for \['Mg'\]"):
        design.check_prices(space, weights)
    design.check_prices(space, dict(cfg.design.cost_weights))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["uq_al", "hu2021"])
def test_real_data_recipes_hold_only_elements_the_cards_support(needs_shared_data, tmp_path, which):
    """On the public files no top-20 recipe holds an element fewer than 5 % of the cards contain (the Pb, Be, Cd,
    Eu recipes the issue found), and every recipe is flagged in domain only by the all-input rules."""
    path = UQ if which == "uq_al" else HU
    d = tmp_path / which
    proc = run_cli(
        [
            f"data={which}",
            f"data.path={path}",
            "chem_window=wrought",
            "target=YS",
            "generator=none",
            "regressor=hinge",
            "train.ensemble=5",
            "optimizer.pop_size=40",
            "optimizer.n_gen=30",
            "qc.plots=false",
            "summary=false",
            f"hydra.run.dir={d}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    master = pd.read_csv(d / "BASE_MASTER.csv", low_memory=False)
    recs = design.without_units(pd.read_csv(d / "recommendations.csv"))
    cfg = compose([f"data={which}"])
    rare = [el for el in cfg.data.composition_columns if (master[el] >= 0.01).mean() < 0.05]
    assert rare, "the file has rare elements"
    assert len(recs), "no recommendations"
    assert (recs[rare] < 0.01).all().all(), recs[rare].max()
    m = json.loads((d / "metrics.json").read_text())
    assert m["holdout_mae_out_domain"] is None or m["holdout_mae_in_domain"] < m["holdout_mae_out_domain"]
    if which == "uq_al":  # design within a family: its cards decide the space (7xxx: Zn >= 2.5 wt%)
        proc = run_cli(
            [
                f"data={which}",
                f"data.path={path}",
                "chem_window=wrought",
                "target=YS",
                "stages=[design]",
                f"design.models={d}",
                "design.family=AA7xxx",
                "design.targets.YS=450",
                "optimizer.pop_size=40",
                "optimizer.n_gen=30",
                "summary=false",
                f"hydra.run.dir={d}_7xxx",
            ]
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        fam = design.without_units(pd.read_csv(d.parent / f"{which}_7xxx" / "recommendations.csv"))
        assert len(fam) and (fam["Zn"] >= 2.5).all() and (fam["Li"] < 0.01).all()


# --- item 5: default data by evidence ---------------------------------------------------------------------------


def test_auto_keeps_synthetic_rows_only_when_an_inner_split_of_train_groups_says_so(monkeypatch, tmp_path):
    seen = []
    real = stages.generate.synthesise

    def spy(cfg, train_cards, node=None):
        seen.append(set(train_cards["group"]))
        return real(cfg, train_cards, node)

    monkeypatch.setattr(stages.generate, "synthesise", spy)
    cfg = compose(
        [
            "generator=auto",
            "generator.candidate.k=25",
            "summary=false",
            "qc.plots=false",
            "stages=[clean,split,generate,qc]",
        ]
    )  # noise 25 x MAD: rows that cannot help
    stages.run(cfg, tmp_path)
    hold = set(json.loads((tmp_path / "split.json").read_text())["holdout_groups"])
    assert len(seen) == 2 and not any(s & hold for s in seen)  # the inner decision, then the real run
    assert seen[0] < seen[1]  # the decision saw a subset of train groups
    rep = json.loads((tmp_path / "generation_report.json").read_text())
    aug = rep["augmentation"]
    assert aug["chosen"] == "none" and aug["inner_mae_augmented"] > aug["inner_mae_real"]
    assert rep["generator_used"] == "none" and len(pd.read_csv(tmp_path / "synthetic.csv")) == 0


def test_auto_keeps_rows_that_do_help_and_the_run_then_trains_on_them(monkeypatch, tmp_path):
    """The keep branch, on a case built so that the candidate's rows must help: a lab file of a third of the demo's
    alloys, and, for the decision, "synthetic" rows that are the other alloys' real cards (true labels, new
    recipes). The decision keeps the candidate, and the run then trains on the candidate's own rows."""
    from alloy_hydra import clean
    from alloy_hydra.demo import demo_path
    from alloy_hydra.io import read_cards
    from alloy_hydra.schema import GROUP_COL, ROW_COL

    base = compose(["summary=false"])
    raw = read_cards(demo_path())
    cards = clean.clean(raw, base.data, base.chem_window, base.cleaning, demo_path()).master
    rng = np.random.default_rng(0)
    groups = cards[GROUP_COL].unique()
    lab = set(rng.choice(groups, len(groups) // 3, replace=False))
    in_lab = cards[GROUP_COL].isin(lab).to_numpy()
    file = tmp_path / "lab.csv"
    raw[raw[ROW_COL].isin(cards.loc[in_lab, ROW_COL])].drop(columns=ROW_COL).to_csv(file, index=False)
    pool = cards.loc[~in_lab]
    real = stages.generate.synthesise
    calls = []

    def helpful_first(cfg, train_cards, node=None):
        calls.append(len(train_cards))
        if len(calls) > 1:
            return real(cfg, train_cards, node)
        owner = rng.choice(train_cards[GROUP_COL].unique(), len(pool))
        rows = pool.assign(**{GROUP_COL: owner, "source_group": owner, "is_synthetic": 1})
        return type("Made", (), {"synth_cards": rows})

    monkeypatch.setattr(stages.generate, "synthesise", helpful_first)
    cfg = compose(
        ["generator=auto", f"data.path={file}", "summary=false", "qc.plots=false", "stages=[clean,split,generate,qc]"]
    )
    stages.run(cfg, tmp_path / "run")
    rep = json.loads((tmp_path / "run" / "generation_report.json").read_text())
    aug = rep["augmentation"]
    assert len(calls) == 2 and aug["chosen"] == "jitter", aug
    assert aug["inner_mae_augmented"] < (1 - aug["min_gain"]) * aug["inner_mae_real"]
    made = pd.read_csv(tmp_path / "run" / "synthetic.csv")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["generator_used"] == "jitter" and len(made) == metrics["n_synthetic"] > 0
    assert set(made["source_generator"]) == {"jitter"} and set(made["group"]) <= lab  # the candidate's own rows


def test_a_failed_qc_never_silently_feeds_training(tmp_path):
    base = ["generator=jitter", "generator.k=25", "qc.plots=false", "summary=false", "stages=[clean,split,generate,qc]"]
    out = lambda p: p.stdout + p.stderr
    proc = run_cli([*base, "qc.on_fail=stop", f"hydra.run.dir={tmp_path}/stop"])
    assert proc.returncode == 2 and "qc.on_fail=stop" in out(proc) and "Traceback" not in out(proc)
    proc = run_cli([*base, f"hydra.run.dir={tmp_path}/fallback"])
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "fallback" / "metrics.json").read_text())
    assert m["qc_pass"] is False and m["generator_used"] == "none" and m["qc_fallback"] is True
    assert "FAILED" in out(proc) and "fallback_real" in (tmp_path / "fallback" / "run.log").read_text()
    for key, bad in (("qc.on_fail", "maybe"), ("design.quantiles", "[0.9,0.1]"), ("design.support.min_share", "5")):
        proc = run_cli([*base, f"{key}={bad}", f"hydra.run.dir={tmp_path}/bad"])
        assert proc.returncode == 2 and key in out(proc) and "Traceback" not in out(proc), out(proc)[-500:]


# --- item 7: a run is a function of its config ------------------------------------------------------------------


@pytest.mark.slow
def test_the_same_run_beside_cpu_burning_processes_gives_the_same_model(tmp_path):
    args = [
        "generator=none",
        "regressor.generations=40",
        "regressor.population_size=200",
        "train.cv_folds=3",
        "train.ensemble=3",
        "stages=[clean,split,generate,qc,train]",
        "qc.plots=false",
        "summary=false",
    ]
    proc = run_cli([*args, f"hydra.run.dir={tmp_path}/quiet"])
    assert proc.returncode == 0, proc.stderr
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        proc = run_cli([*args, f"hydra.run.dir={tmp_path}/busy"])
    finally:
        for b in burners:
            b.kill()
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "quiet" / "model.json").read_bytes() == (tmp_path / "busy" / "model.json").read_bytes()
    m = json.loads((tmp_path / "busy" / "metrics.json").read_text())
    assert m.get("sr_time_cap_fired", 0) == 0
    # the same config as a sweep job (joblib worker, its share of the cores) gives the same model too
    proc = run_cli(["-m", *args, "seed=42", f"hydra.sweep.dir={tmp_path}/sweep"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    (job,) = list((tmp_path / "sweep").glob("*/model.json"))
    assert job.read_bytes() == (tmp_path / "quiet" / "model.json").read_bytes()


def test_the_training_subsample_never_drops_a_real_card():
    groups = np.repeat(np.arange(50), 100)  # 5000 rows in 50 groups
    real = np.zeros(5000, bool)
    real[::50] = True  # 100 real cards among synthetic rows
    keep = train.subsample(groups, 1000, seed=0, always=real)
    assert set(np.flatnonzero(real)) <= set(keep)
    assert 800 < len(keep) < 1200 and len(np.unique(groups[keep])) == 50  # the rest: a share of every group
    assert len(train.subsample(groups, 10_000, seed=0, always=real)) == 5000
