"""Phase 4: inverse design over recipes, checked against the demo ground truth."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import compose, run_cli

from alloy_hydra import clean, design, selection, stages
from alloy_hydra.config import DesignConfig
from alloy_hydra.demo import demo_path
from alloy_hydra.io import read_cards
from alloy_hydra.model import Model

FAST_TRAIN = [
    "generator=none",
    "regressor.generations=30",
    "regressor.n_threads=1",
    "debug=fast",
    "stages=[clean,split,train,audit]",
]
SMALL = ["optimizer.pop_size=40", "optimizer.n_gen=25"]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for t in ("YS", "UTS"):
        proc = run_cli([*FAST_TRAIN, f"target={t}", f"hydra.run.dir={root}/{t}"])
        assert proc.returncode == 0, proc.stderr
    return root


def design_run(tmp_path, models_dir, *extra, name="d"):
    proc = run_cli(
        [
            "stages=[design]",
            f"design.models={models_dir}",
            "design.targets.YS=260",
            "design.targets.UTS=320",
            "summary=false",
            *SMALL,
            *extra,
            f"hydra.run.dir={tmp_path}/{name}",
        ]
    )
    return proc, tmp_path / name


def test_recommendations_are_valid_cards_and_the_closed_loop_is_scored(models_dir, tmp_path):
    proc, d = design_run(tmp_path, models_dir)
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(d / "recommendations.csv")
    # units in the column names a metallurgist reads; without_units gives back the code's names
    assert {"YS_pred_MPa", "YS_std_MPa", "UTS_target_MPa", "Mg_wt_pct", "Al_wt_pct", "p_hit"} <= set(written)
    assert "YS_pred" not in written and "Mg" not in written
    recs = design.without_units(written)
    elements = ["Si", "Fe", "Cu", "Mn", "Mg", "Cr", "Ni", "Zn", "Ti", "Zr", "Sc", "Other", "Al"]
    assert list(design.with_units(recs, {"YS": "MPa", "UTS": "MPa"}, elements)) == list(written)
    m = json.loads((d / "metrics.json").read_text())
    assert 0 < len(recs) <= 20 and m["n_recommendations"] == len(recs)
    assert np.allclose(recs[elements].sum(axis=1), 100, atol=0.05)
    window = compose().chem_window
    assert (clean.window_violations(recs[elements], window) == "").all() and (recs[elements] >= 0).all().all()
    for col in (
        "rank",
        "YS_pred",
        "YS_std",
        "YS_dev",
        "UTS_pred",
        "cost_index",
        "n_additions",
        "nearest_card",
        "nearest_distance",
        "in_domain",
        "note",
        "homog_schedule",
        "recryst_schedule",
        "YS_truth",
    ):
        assert col in recs, col
    assert (recs["YS_pred"] <= recs["UTS_pred"]).all()
    assert recs["nearest_card"].str.contains(r" / row \d+$").all()  # names the row in the user's file
    assert recs["homog_schedule_readable"].str.fullmatch(r"\d+ °C × [\d.]+ (s|min|h)( \+ .*)?").all()
    # chances, ranked first: the best has a real one; far-down recipes may round to 0.0000
    assert recs["p_hit"].between(0, 1).all() and recs["p_hit"].iat[0] >= 0.05
    assert (recs["p_hit"].round(2).diff().dropna() <= 0).all() or not recs["in_domain"].all()
    # distinct recipes: no two share composition (0.1 wt%), cold work (5 %), route and anneal peak (10 °C)
    peak = (
        recs["recryst_schedule"]
        .fillna("")
        .str.findall(r"(\d+(?:\.\d+)?)/")
        .map(lambda ts: round(max(map(float, ts)) / 10) if ts else -1)
    )
    key = (
        recs[elements[:-1]].round(1).astype(str).agg("|".join, axis=1)
        + (recs["cold_reduction_pct"] / 5).round().astype(str)
        + (recs["hot_reduction_pct"] / 5).round().astype(str)
        + recs["casting"].astype(str)
        + recs["recryst_type"].astype(str)
        + peak.astype(str)
    )
    assert not key.duplicated().any()
    # the closed-loop hit rate is the share of the top 10 the ground truth (noise off) puts within tolerance
    hits = ((recs["YS_truth"] - 260).abs() <= 10) & ((recs["UTS_truth"] - 320).abs() <= 15)
    assert m["design_hit_rate"] == pytest.approx(hits.head(10).mean())
    assert (d / "pareto_candidates.csv").exists() and (d / "plots" / "design_pareto.png").exists()


def test_a_recipe_round_trips_through_card_and_featuriser(models_dir, tmp_path):
    proc, d = design_run(tmp_path, models_dir)
    assert proc.returncode == 0, proc.stderr
    recs = design.without_units(pd.read_csv(d / "recommendations.csv"))
    cfg = compose()
    raw = read_cards(d / "recommended_cards.csv")
    cleaned = clean.clean(raw, cfg.data, cfg.chem_window, cfg.cleaning, "cards").master
    assert len(cleaned) == len(recs)
    model = Model.load(models_dir / "YS" / "model.json")
    pred = model.predict(cleaned)[0]
    assert np.allclose(pred, recs["YS_pred"], atol=1e-3)  # recommendations.csv rounds to 3 decimals
    assert (cleaned["homog_schedule"].fillna("") == recs["homog_schedule"].fillna("")).all()


def test_infeasible_targets_give_an_empty_well_formed_file(models_dir, tmp_path):
    proc, d = design_run(
        tmp_path, models_dir, "design.targets.YS=2000", "design.targets.UTS=2100", "design.min.YS=1900"
    )
    assert proc.returncode == 0, proc.stderr
    assert "no feasible recipe" in proc.stdout + proc.stderr
    recs = design.without_units(pd.read_csv(d / "recommendations.csv"))
    assert len(recs) == 0 and {"rank", "YS_pred", "Mg"} <= set(recs.columns)
    assert json.loads((d / "metrics.json").read_text())["n_recommendations"] == 0


def test_out_of_domain_never_ranks_above_in_domain(models_dir, tmp_path):
    proc, d = design_run(tmp_path, models_dir, "design.domain=penalise", "design.top=200", name="pen")
    assert proc.returncode == 0, proc.stderr
    recs = design.without_units(pd.read_csv(d / "recommendations.csv"))
    flags = recs["in_domain"].astype(bool).to_numpy()
    assert not (~flags[:-1] & flags[1:]).any()  # no in-domain row after an out-of-domain one
    proc, d = design_run(tmp_path, models_dir, name="exc")
    assert design.without_units(pd.read_csv(d / "recommendations.csv"))["in_domain"].astype(bool).all()


def test_a_target_without_a_model_is_a_clear_error(models_dir, tmp_path):
    proc, d = design_run(tmp_path, models_dir, "design.targets.FractureEL=12")
    assert proc.returncode == 2 and "no model for them" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_broken_model_file_is_a_clear_error(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text("{not json")
    proc, d = design_run(tmp_path, tmp_path / "m")
    assert proc.returncode == 2 and "not a readable model file" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_nsga2_beats_random_search_on_the_same_budget(models_dir):
    # the space run.py searches (stages.design.space_for), out-of-domain recipes allowed so that random search
    # finds feasible ones too and the two are compared on the same measure
    cfg = compose(["design.domain=ignore"])
    models, source = selection.load_models(models_dir)
    master = pd.read_csv(source / "BASE_MASTER.csv")
    space = stages.design.space_for(cfg, master, cfg.data)
    ev = design.Evaluator(space, models, cfg.design, cfg.cleaning, {"YS": 260.0, "UTS": 320.0})
    best, ticks = {}, []
    for method in ("nsga2", "random"):
        search = {"nsga2": design.NSGA2Search, "random": design.RandomSearch}[method](method, 40, 30, 0)
        X = search.minimise(ev, progress=lambda done, total: ticks.append((done, total)))
        # the archive (a pymoo callback for NSGA-II) holds every candidate evaluated, with what the evaluator says
        assert X.shape == (40 * 30, len(space.vars)) and ticks[-1] == (30, 30) and len(ticks) == 30
        again = ev(X)
        assert (search.feasible_ == design.feasible(ev, again)).all() and (search.broken_ == (again.G > 0)).all()
        ticks.clear()
        ranked = design.rank(ev, X, master, list(cfg.data.id_columns), search.feasible_)
        assert len(ranked), f"{method} found no feasible recipe"
        best[method] = ranked["distance"].min()
    assert best["nsga2"] < best["random"]
    # the search loop reads dicts of arrays, the report frames: the same predictions and constraints
    X = space.xl + np.random.default_rng(1).random((50, len(space.vars))) * (space.xu - space.xl)
    fast, full = ev(X), ev(X, with_std=True)
    assert isinstance(fast.cards, dict) and isinstance(full.cards, pd.DataFrame)
    assert np.allclose(fast.F, full.F) and np.allclose(fast.G[:, :-1], full.G[:, :-1])


def test_the_seeds_of_a_target_design_as_one_committee(tmp_path):
    """design.combine=committee: runs of the chosen configuration (here two seeds) predict as their mean, with
    sigma the RMS of their own sigmas, at least their disagreement, in domain only where both are; combine=best
    takes one."""
    from alloy_hydra.errors import ConfigError
    from alloy_hydra.model import Committee

    runs = []
    for seed in (1, 2):
        cheap = [a for a in FAST_TRAIN if not a.startswith("regressor.")]
        proc = run_cli(
            [
                *cheap,
                "regressor=ridge",
                "target=YS",
                f"seed={seed}",
                f"split.seed={seed}",
                f"hydra.run.dir={tmp_path}/s{seed}",
            ]
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(tmp_path / f"s{seed}")
    physics = {json.loads((r / "metrics.json").read_text())["physics_pass"] for r in runs}
    models, _ = selection.load_models(runs)
    if len(physics) == 1:  # same verdict: one committee of both
        assert isinstance(models["YS"], Committee) and len(models["YS"].models) == 2
    else:  # a run that fails physics never joins one that passes
        assert isinstance(models["YS"], Model)
    assert isinstance(selection.load_models(runs, "best")[0]["YS"], Model)
    with pytest.raises(ConfigError, match="committee or best"):
        selection.load_models(runs, "mean")
    a, b = (Model.load(r / "model.json") for r in runs)
    cfg = compose()
    cards = clean.clean(read_cards(clean.data_path(cfg.data)), cfg.data, cfg.chem_window, cfg.cleaning).master
    (pa, sa, ra), (pb, sb, rb) = a.report(cards), b.report(cards)
    mean, std, ratio = Committee([a, b]).report(cards)
    assert np.allclose(mean, (pa + pb) / 2) and np.allclose(ratio, np.maximum(ra, rb))
    rms, disagree = np.sqrt((sa**2 + sb**2) / 2), np.abs(pa - pb) / 2
    assert np.allclose(std, np.maximum(rms, disagree))  # not their sum: each sigma already holds its variance
    assert (std >= np.minimum(sa, sb) - 1e-9).all() and (std <= np.sqrt(rms**2 + disagree**2) + 1e-9).all()
    fast = Committee([a, b]).search(cards)
    assert np.allclose(fast[0], mean) and np.allclose(fast[1], np.maximum(a.search(cards)[1], b.search(cards)[1]))


def test_grain_size_is_an_outcome_of_the_recipe_not_a_knob():
    """design.outcomes: a caster cannot set the grain size, so it is no decision variable; a recipe gets what
    the most similar tested recipes showed (a tested card's own recipe: its own grain size)."""
    cfg = compose()
    master = clean.clean(read_cards(clean.data_path(cfg.data)), cfg.data, cfg.chem_window, cfg.cleaning).master
    knob = design.Space(master, cfg.data, cfg.chem_window, DesignConfig(outcomes=[]))
    space = design.Space(master, cfg.data, cfg.chem_window, DesignConfig(outcomes=["grain_size_um"]))
    assert "grain_size_um" in knob.index and "grain_size_um" not in space.index
    X = space.xl + np.random.default_rng(0).random((200, len(space.vars))) * (space.xu - space.xl)
    d = space.recipes(X)["grain_size_um"]
    assert d.notna().all() and d.between(master["grain_size_um"].min(), master["grain_size_um"].max()).all()
    known = space.table[space.table["grain_size_um"].notna()].copy()
    own = space.fill_outcomes(known.drop(columns="grain_size_um"))["grain_size_um"]
    assert (np.abs(own.to_numpy() - known["grain_size_um"].to_numpy()) < 0.1).mean() > 0.95


def test_single_run_designs_for_its_own_target(tmp_path):
    proc = run_cli(
        [
            "generator=none",
            "regressor.generations=20",
            "regressor.n_threads=1",
            "train.cv_folds=3",
            "train.ensemble=3",
            "stages=[clean,split,train,audit,design]",
            *SMALL,
            f"hydra.run.dir={tmp_path}/run",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["design_targets"] == "YS=260" and "design_hit_rate" in m and m["time_design_s"] > 0


def test_the_recommendation_table_reads_at_80_columns():
    """Keys as rows, recipes as columns, in blocks that fit: every element a recipe holds, the process, the
    prediction ± σ, p_hit and the ground truth appear in full at 80 columns (no '…')."""
    import io

    import pandas as pd
    from rich.console import Console

    from alloy_hydra import report

    top = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "Mg": [4.51, 4.4, 3.2, 2.9],
            "Zn": [0.0, 0.01, 0.0, 0.02],
            "Cu": [0.0, 0.12, 0.0, 0.0],
            "casting": ["DC", "DC", "CC", "DC"],
            "cold_reduction_pct": [33.8, 32.9, 60.0, 41.5],
            "recryst_schedule": ["345/7200", "", "350/3600 + 200/7200", "340/10800"],
            "YS_pred": [261.2, 259.9, 258.1, 262.0],
            "YS_std": [6.1, 7.3, 5.5, 8.8],
            "YS_truth": [258.4, 263.0, 255.0, 270.4],
            "p_hit": [0.9, 0.85, 0.8, 0.7],
            "cost_index": [1.02, 1.03, 1.01, 1.02],
            "in_domain": [True] * 4,
        }
    )
    buf = io.StringIO()
    report.print_recommendations(
        top,
        {"YS": 260.0},
        ["Mg", "Zn", "Cu"],
        ["casting", "cold_reduction_pct", "recryst_schedule"],
        console=Console(file=buf, width=80),
    )
    out = buf.getvalue()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    for text in ("Mg wt%", "4.51", "Cu wt%", "0.12", "CC", "350/3600", "200/7200", "261.2 ± 6.1", "270.4", "#4"):
        assert text in out, text  # a long schedule folds inside its cell
    assert "Zn wt%" not in out  # no recipe holds 0.05 wt% Zn


def test_encode_inverts_the_recipe_decoding():
    """Space.encode puts tested cards into the design variables (campaign baselines, BayBE): decoding them gives
    the cards back up to the castable rounding, inside the variables' ranges."""
    from alloy_hydra.stages.design import space_for

    cfg = compose(["design.casting=DC"])
    master = clean.clean(read_cards(demo_path()), cfg.data, cfg.chem_window, cfg.cleaning).master
    space = space_for(cfg, master, cfg.data)
    X, ok = space.encode(space.table)
    assert ok.sum() == (space.table["casting"] == "DC").sum() and (X >= space.xl).all() and (X <= space.xu).all()
    rec = space.recipes(X)
    for v in space.vars:
        if v.kind == "category":
            assert (rec.loc[ok, v.name].astype(str) == space.table.loc[ok, v.name].astype(str)).all(), v.name
            continue
        a, b = space.table.loc[ok, v.name].to_numpy(float), rec.loc[ok, v.name].to_numpy(float)
        inside = np.isfinite(a) & np.isfinite(b)
        if v.kind == "element":  # the cards' 1-99 % quantiles bound an element: the outermost cards are clipped
            inside &= (a >= v.lo - 1e-9) & (a <= v.hi + 1e-9)
        step = {"element": 0.0051, "count": 0.0}.get(v.kind, 2.51 if "_T" in v.name else 0.06)
        assert np.abs(a[inside] - b[inside]).max(initial=0) <= step, v.name


def test_the_simulator_scores_only_the_packaged_demo_cards(tmp_path):
    """A lab's own file under a config copied from the demo keeps ground_truth: true; the demo's simulated
    metallurgy must not score its recipes (no truth column, no hit rate), and the log says why."""
    import shutil

    mine = tmp_path / "mine.csv"
    shutil.copy(demo_path(), mine)
    cheap = [a for a in FAST_TRAIN if not a.startswith(("regressor.", "stages="))]
    proc = run_cli(["regressor=hinge", *cheap, *SMALL, f"data.path={mine}", f"hydra.run.dir={tmp_path}/run"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    recs = pd.read_csv(tmp_path / "run" / "recommendations.csv")
    assert "design_hit_rate" not in m and not [c for c in recs if "truth" in c] and len(recs)
    assert "scores only the packaged demo cards" in (tmp_path / "run" / "run.log").read_text()


def test_uniform_elongation_stays_below_fracture_elongation_in_design(models_dir):
    """The orderings a recipe's properties must keep are constraints of the search: YS <= UTS and, when both
    elongations are designed for, UniformEL <= FractureEL (stand-in models: the YS and UTS formulas)."""
    cfg = compose()
    models, source = selection.load_models(models_dir)
    master = pd.read_csv(source / "BASE_MASTER.csv")
    space = stages.design.space_for(cfg, master, cfg.data)
    pair = {"UniformEL": models["UTS"], "FractureEL": models["YS"]}  # UTS > YS: the ordering is violated
    ev = design.Evaluator(space, pair, cfg.design, cfg.cleaning, {"UniformEL": 10.0, "FractureEL": 12.0})
    assert "UniformEL<=FractureEL" in ev.constraints and "YS<=UTS" not in ev.constraints
    X = space.xl + np.random.default_rng(2).random((40, len(space.vars))) * (space.xu - space.xl)
    out = ev(X)
    g = out.G[:, ev.constraints.index("UniformEL<=FractureEL")]
    assert np.allclose(g, out.pred["UniformEL"] - out.pred["FractureEL"]) and (g > 0).mean() > 0.9


def test_recipes_are_marked_unvalidated_when_the_holdout_cannot_vouch_for_them():
    from alloy_hydra.stages.design import weak_answer

    good = {"n_holdout_rows": 60, "coverage_1sigma": 0.7, "sigma_error_spearman": 0.4, "holdout_in_domain_share": 0.8,
            "holdout_mae_in_domain": 10.0}  # fmt: skip
    assert weak_answer(good) == []
    small = {**good, "n_holdout_rows": 11, "coverage_1sigma": 0.36, "sigma_error_spearman": -0.34,
             "holdout_mae_in_domain": None}  # fmt: skip
    why = "; ".join(weak_answer(small))
    assert (
        "only 11 held-out cards" in why and "0.36" in why and "-0.34" in why and "no held-out card was in domain" in why
    )
    assert weak_answer({**good, "coverage_1sigma": 0.97})  # over-wide σ is miscalibrated too
