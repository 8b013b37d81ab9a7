"""The library of metallurgical forms, physics-signed terms and the choice of the smallest formula (issue 27)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, compose
from hypothesis import given, settings
from hypothesis import strategies as st

from alloy_hydra import clean, config, expr, factory, forms, ground_truth, physics, schedule
from alloy_hydra import train as train_mod
from alloy_hydra.features import Featuriser, describe
from alloy_hydra.io import read_cards
from alloy_hydra.regress import GBMModel, HingeRegressor

# the inputs the demo simulator computes its properties from, beyond plain element contents: a shipped data config
# that builds an interaction over one of them hands the formula the simulator's own form
SIMULATOR_INPUTS = {"grain_size_um", "recryst_retained_strain", "cold_reduction_pct", "recryst_jmak_fraction"}


def demo_cards():
    cfg = compose()
    res = clean.clean(read_cards(clean.data_path(cfg.data)), cfg.data, cfg.chem_window, cfg.cleaning, "demo")
    return cfg, res.master


@pytest.mark.parametrize("path", sorted((ROOT / "conf" / "data").glob("*.yaml")), ids=lambda p: p.stem)
def test_no_shipped_data_config_restates_the_simulators_forms(path: Path):
    data = yaml.safe_load(path.read_text())
    interactions = data.get("interactions", [])
    if data["name"] == "demo":
        assert interactions == [], "the demo config must leave the forms to the library and the data"
    for formula in interactions:
        used = expr.variables(Featuriser(categorical=list(data.get("categoricals", {})))._parse(formula)[0])
        assert not used & SIMULATOR_INPUTS, f"{path.name}: {formula!r} names {used & SIMULATOR_INPUTS}"


def test_the_simulator_does_not_share_the_recrystallisation_rules_constants():
    rule = config.recryst_rule()
    assert ground_truth.Q_RX_J_MOL != rule.activation_kJ_mol * 1e3
    assert ground_truth.STRAIN_EXPONENT != rule.strain_exponent
    assert ground_truth.AVRAMI_N != schedule.JMAK_N
    # ... by realistic amounts: within a factor of 1.5 of the literature values, not a different mechanism
    assert 0.67 < ground_truth.Q_RX_J_MOL / (rule.activation_kJ_mol * 1e3) < 1.5
    assert 0.67 < ground_truth.AVRAMI_N / schedule.JMAK_N < 1.5


def test_the_library_offers_named_metallurgical_forms_chosen_by_the_cards():
    cfg, cards = demo_cards()
    f = factory.featuriser(cfg).fit(cards)
    cols = set(f.columns_)
    expected = [
        "hall_petch_grain_size_um",
        "cold_reduction_pct_vm_strain_pow0_5",
        "recryst_retained_strain_pow0_5",
        "Mg_pow0_667",
        "hollomon_jaffe_recryst",
        "arrhenius_homog",
        "Mg_x_hall_petch_grain_size_um",
    ]
    for name in expected:
        assert name in cols, name
    X = f.transform(cards)
    d = cards["grain_size_um"].to_numpy(float)
    ok = np.isfinite(d)
    assert np.allclose(X["hall_petch_grain_size_um"].to_numpy()[ok], d[ok] ** -0.5)
    strain = schedule.rolling_strain(cards["cold_reduction_pct"].to_numpy(float))
    assert np.allclose(X["cold_reduction_pct_vm_strain_pow0_5"], strain**0.5, atol=1e-4)
    # products go to the solutes that vary most in these cards (Mg in AA5xxx), not to a list in the config
    assert forms.supported(forms.spec(cfg.data, cfg.data.forms), cards)[0] == "Mg"
    # every form is described in words in equation.txt's glossary
    elements = list(cfg.data.composition_columns)
    assert "Hall–Petch" in describe("hall_petch_grain_size_um", f.categorical, elements)
    assert describe("Mg_x_hall_petch_grain_size_um", f.categorical, elements).startswith("Mg (wt%) × Hall–Petch")
    # the fitted list travels with the model: a loaded featuriser transforms without the library
    again = Featuriser.from_json(f.to_json())
    assert np.allclose(again.transform_array(cards), f.transform_array(cards))


def test_the_library_can_be_switched_off_or_added_to_and_respects_exclude():
    cfg, cards = demo_cards()
    off = compose(["data.forms.enabled=false"])
    assert not any("hall_petch" in c for c in factory.featuriser(off).fit(cards).columns_)
    own = compose(["data.interactions=['hall_petch_grain_size_um := 1/grain_size_um']"])
    f = factory.featuriser(own).fit(cards)
    assert f.formulas_[0] == "hall_petch_grain_size_um := 1/grain_size_um"  # the config's own form wins its name
    ok = cards["grain_size_um"].notna()
    assert np.allclose(f.transform(cards.loc[ok])["hall_petch_grain_size_um"], 1 / cards.loc[ok, "grain_size_um"])
    without = compose(["train.exclude=[grain_size_um]"])
    assert not any("grain_size" in c for c in factory.featuriser(without).fit(cards).columns_)


def _signed_problem(seed=0, n=300):
    """y falls with Mg in these rows (a confounded sample), although physics says Mg strengthens."""
    rng = np.random.default_rng(seed)
    mg, x = rng.uniform(0, 5, n), rng.uniform(0, 1, n)
    y = 100 - 6 * mg + 80 * x + rng.normal(0, 1, n)
    A = np.column_stack([mg, x])
    base = A[:100]
    nudged = base + np.array([0.2, 0.0])
    return A, y, [{"base": base, "nudged": nudged, "sign": 1, "everywhere": True}]


def _mg_weights(front):
    """Weights of every term that moves with Mg, over the whole front."""
    out = []
    for f in front:
        for _, t in expr.terms(f["expr"]):
            if "const" not in t and "Mg" in expr.variables(t["args"][1]):
                out.append(t["args"][0]["const"])
    return np.array(out)


def test_a_sign_constrained_term_never_flips():
    A, y, cons = _signed_problem()
    free = HingeRegressor(feature_names=["Mg", "x"]).fit(A, y)
    assert (_mg_weights(free.front_) < 0).any()  # the data alone give Mg a negative weight: the check can fail
    signed = HingeRegressor(feature_names=["Mg", "x"], physics=cons, physics_min_fraction=0.0).fit(A, y)
    assert (_mg_weights(signed.front_) >= 0).all()
    # ... and no term of Mg saturates (a cap min(Mg, k) would stop the formula at a training quantile)
    caps = lambda front: [t for f in front for _, t in expr.terms(f["expr"]) if "min(Mg" in expr.to_string(t)]  # noqa: E731
    assert caps(free.front_) and not caps(signed.front_)
    # refits (the chosen member on all rows, the ensemble's bootstraps) keep the member's signs
    member = max((f for f in signed.front_ if f["length"] > 1), key=lambda f: f["length"])
    cols = {"Mg": A[:, 0], "x": A[:, 1]}
    for seed in range(5):
        idx = np.random.default_rng(seed).choice(len(y), len(y))
        refit = train_mod.refit_constants(
            member["expr"], {k: v[idx] for k, v in cols.items()}, y[idx], linear=True, signs=member["signs"]
        )
        assert (_mg_weights([{"expr": refit}]) >= 0).all()


def test_weight_signs_follow_the_nudges_and_skip_conditional_checks():
    base = np.zeros((4, 3))
    nudged = base + np.array([1.0, -1.0, 0.0])
    both = np.array([[1.0, 0, 0], [-1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]])
    assert physics.weight_signs([{"base": base, "nudged": nudged, "sign": -1}]).tolist() == [-1, 1, 0]
    assert physics.weight_signs([{"base": base, "nudged": base + both, "sign": 1}]).tolist() == [0, 0, 0]
    assert physics.weight_signs([{"base": base, "nudged": nudged, "sign": 1, "everywhere": False}]) is None


def test_the_gbm_reference_keeps_the_audited_sign():
    A, y, cons = _signed_problem()
    grid = np.column_stack([np.linspace(0, 5, 50), np.full(50, 0.5)])
    free = GBMModel(feature_names=["Mg", "x"]).fit(A, y)
    mono = GBMModel(feature_names=["Mg", "x"], monotonic_cst=physics.weight_signs(cons).tolist()).fit(A, y)
    assert (np.diff(free.predict(grid)) < 0).any()
    assert (np.diff(mono.predict(grid)) >= -1e-9).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 120), st.floats(1.0, 50.0), st.sampled_from([True, False, None])),
        min_size=2,
        max_size=25,
    ),
    st.floats(0.0, 0.3),
)
def test_the_chosen_member_is_the_smallest_within_tolerance(members, tol):
    table = pd.DataFrame(
        [
            {"id": i, "complexity": c, "cv_mae": m, "cv_nonfinite": 0, "domain_nonfinite": 0, "physics_pass": p}
            for i, (c, m, p) in enumerate(members)
        ]
    )
    chosen, _ = train_mod.choose(table, "parsimony", tol)
    pool = table[table["physics_pass"].ne(False)]
    pool = pool if len(pool) else table
    within = pool[pool["cv_mae"] <= pool["cv_mae"].min() * (1 + tol)]
    assert table.loc[chosen, "complexity"] == within["complexity"].min()
    assert chosen in within.index


def test_the_front_is_reported_by_size():
    table = pd.DataFrame(
        {
            "complexity": [1, 15, 35, 60, 90],
            "cv_mae": [10.0, 6.0, 5.0, 4.0, 3.0],
            "cv_r2": [0.0, 0.6, 0.7, 0.8, 0.9],
            "cv_nonfinite": 0,
            "domain_nonfinite": 0,
            "physics_pass": [None, True, False, True, True],
        }
    )
    sizes = train_mod.by_size(table)
    assert sizes["cv_r2_le_20"] == 0.6 and sizes["cv_r2_le_40"] == 0.6  # the 35-node member fails physics
    assert sizes["cv_r2_le_80"] == 0.8 and sizes["cv_mae_le_80"] == 4.0


def test_max_complexity_bounds_the_choice():
    table = pd.DataFrame(
        {
            "id": range(4),
            "complexity": [1, 15, 35, 60],
            "cv_mae": [10.0, 6.0, 5.0, 4.0],
            "cv_nonfinite": 0,
            "domain_nonfinite": 0,
            "physics_pass": [None, True, True, True],
        }
    )
    assert train_mod.choose(table, "parsimony", 0.02)[0] == 3
    assert train_mod.choose(table, "parsimony", 0.02, max_complexity=40)[0] == 2
    assert train_mod.choose(table, "parsimony", 0.5, max_complexity=40)[0] == 1  # 6 <= 1.5 x 5: smallest within


def test_equation_groups_the_formulas_terms_by_mechanism():
    """equation.txt's summary: each term filed under the mechanism its input stands for (a solute × process form
    under the process form), spreads from the cards, variance shares that add up to 1."""
    data = compose().data
    cat = ("casting", "recryst_type")
    assert forms.mechanism("hall_petch_grain_size_um", data, cat) == forms.MECHANISMS[0]
    assert forms.mechanism("grain_size_um", data, cat) == forms.MECHANISMS[0]
    assert forms.mechanism("Mg_x_recryst_retained_strain_pow0_5", data, cat) == forms.MECHANISMS[1]
    assert forms.mechanism("cold_reduction_pct", data, cat) == forms.MECHANISMS[1]
    assert forms.mechanism("Fe_x_hollomon_jaffe_recryst", data, cat) == forms.MECHANISMS[2]
    assert forms.mechanism("recryst_type=batch", data, cat) == forms.MECHANISMS[2]
    assert forms.mechanism("casting=DC", data, cat) == forms.MECHANISMS[3]
    assert forms.mechanism("Mg_pow0_667", data, cat) == forms.MECHANISMS[4]
    assert forms.mechanism("Al", data, cat) == forms.MECHANISMS[4]
    rng = np.random.default_rng(0)
    X = {"Mg": rng.uniform(0, 5, 200), "hall_petch_grain_size_um": rng.uniform(0.05, 0.3, 200)}
    X["Mg_pow0_667"] = X["Mg"] ** 0.667
    node = expr.parse("50 + 20*Mg + 5*Mg_pow0_667 + 300*hall_petch_grain_size_um")
    groups = forms.by_mechanism(node, X, data, cat)
    assert [g["mechanism"] for g in groups] == [forms.MECHANISMS[4], forms.MECHANISMS[0]]  # larger share first
    assert groups[0]["inputs"] == ["Mg", "Mg_pow0_667"]
    assert sum(g["share"] for g in groups) == pytest.approx(1.0)
    mg = 20 * X["Mg"] + 5 * X["Mg_pow0_667"]
    assert groups[0]["range"] == pytest.approx(np.percentile(mg, 95) - np.percentile(mg, 5))
