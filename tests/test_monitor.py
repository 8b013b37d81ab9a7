"""Monitoring: quiet on a fresh sample of the training distribution, loud on a real drift, and the design loop
closed (predicted vs measured for recipes that were cast)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_cli

from alloy_hydra import clean, demo, ground_truth, monitor
from alloy_hydra.config import MonitorConfig, compose
from alloy_hydra.errors import AlloyHydraError

BOOT = (MonitorConfig.bootstrap, MonitorConfig.seed, MonitorConfig.confidence)

FAST = ["regressor=hinge", "generator=none", "stages=[clean,split,train,audit]", "summary=false"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "alloy_hydra.monitor", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitor")
    cards = pd.read_csv(demo.demo_path(), dtype=str, keep_default_na=False)
    cards[cards["Casting"] == "DC"].to_csv(root / "dc.csv", index=False)
    cards[cards["Casting"] == "CC"].to_csv(root / "cc.csv", index=False)
    (root / "fresh.csv").write_text(demo.to_csv(demo.make_cards(11)))  # a new draw of the demo's distribution
    for name, extra in (("all", []), ("dc", [f"data.path={root / 'dc.csv'}"])):
        proc = run_cli([*FAST, *extra, f"hydra.run.dir={root / name}"])
        assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def test_quiet_on_a_fresh_sample_of_the_training_distribution(runs):
    proc = cli(runs / "all", runs / "fresh.csv", "--out", runs / "m_fresh")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((runs / "m_fresh" / "monitor_report.json").read_text())
    assert report["rows_in"] == report["rows_scored"] + report["rows_unlabelled"] + report["rows_rejected"]
    e = report["error"]
    assert e["n_cards"] > 100 and not e["drift"] and e["change_pct"] < 15 and "fine" in e["verdict"]
    assert report["drifting_features"] == [] and report["out_of_domain_share"] < 0.5
    assert (runs / "m_fresh" / "monitor_history.png").stat().st_size > 5000


def test_loud_on_a_model_trained_on_dc_cards_scored_on_cc_cards(runs):
    proc = cli(runs / "dc", runs / "cc.csv", "--out", runs / "m_cc")
    assert proc.returncode == monitor.RETRAIN_EXIT, proc.stdout + proc.stderr
    assert "retraining recommended" in proc.stdout
    report = json.loads((runs / "m_cc" / "monitor_report.json").read_text())
    e = report["error"]
    assert e["drift"] and e["change_pct"] > 15 and e["change_ci_pct"][0] > 0
    assert "casting" in report["drifting_features"] and "ingot_thickness_mm" in report["drifting_features"]
    assert report["out_of_domain_share"] > 0.5
    history = pd.read_csv(runs / "monitor_history.csv")  # beside the run dirs: one row per check
    assert len(history) >= 1 and history["drift"].astype(bool).any()


def test_a_stricter_rule_and_too_few_cards(runs):
    cc = pd.read_csv(runs / "cc.csv", dtype=str, keep_default_na=False)
    cc.head(5).to_csv(runs / "cc5.csv", index=False)
    proc = cli(runs / "dc", runs / "cc5.csv", "--out", runs / "m_few")
    report = json.loads((runs / "m_few" / "monitor_report.json").read_text())
    assert proc.returncode == 0 and "too few labelled cards" in report["error"]["verdict"]
    proc = cli(runs / "all", runs / "fresh.csv", "--out", runs / "m_strict", "--max-mae-increase", "-0.9")
    report = json.loads((runs / "m_strict" / "monitor_report.json").read_text())
    assert report["settings"]["max_mae_increase"] == -0.9
    # a stricter share alone is no drift: the interval must also say the error rose (fresh cards: it did not)
    assert report["error"]["change_ci_pct"][0] < 0 and not report["error"]["drift"] and proc.returncode == 0


def test_the_drift_rule_needs_a_rise_the_interval_confirms():
    settings = compose().monitor
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 3)
    doubled = rng.normal(0, 1, len(groups)) * 2 * np.sqrt(np.pi / 2) * 5.0  # MAE ≈ 10 vs a recorded 5
    check = monitor.error_check(np.zeros(len(groups)), doubled, groups, 5.0, settings)
    assert check["drift"] and check["change_ci_pct"][0] > 0
    same = rng.normal(0, 1, len(groups)) * np.sqrt(np.pi / 2) * 5.0  # MAE ≈ the recorded 5
    assert not monitor.error_check(np.zeros(len(groups)), same, groups, 5.0, settings)["drift"]
    few = monitor.error_check(np.zeros(5), doubled[:5], groups[:5], 5.0, settings)
    assert not few["drift"] and "too few" in few["verdict"]


def test_bad_input_is_exit_2_without_traceback(runs, tmp_path):
    (tmp_path / "bad.csv").write_text("a;b\n1;2\n")
    for args in ((tmp_path / "nowhere", runs / "fresh.csv"), (runs / "all", tmp_path / "bad.csv"),
                 ("YS@champion", runs / "fresh.csv", "--registry", tmp_path / "empty")):  # fmt: skip
        proc = cli(*args)
        assert proc.returncode == 2 and "error" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_recommended_recipes_cast_and_measured_close_the_loop(runs, tmp_path):
    proc = run_cli(["stages=[design]", f"design.models={runs / 'all'}", "design.targets.YS=250", "summary=false",
                    "optimizer.pop_size=30", "optimizer.n_gen=15", f"hydra.run.dir={tmp_path / 'd'}"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    cast = pd.read_csv(tmp_path / "d" / "recommended_cards.csv", dtype=str, keep_default_na=False)
    cfg = compose()
    cleaned = clean.clean(cast.assign(source_row=range(2, len(cast) + 2)), cfg.data, cfg.chem_window, cfg.cleaning)
    truth = ground_truth.properties(cleaned.master)["YS"].to_numpy()
    cast["YS (MPa)"] = np.round(truth, 1)  # "measured" without noise
    cast.to_csv(tmp_path / "measured.csv", index=False)
    recs = tmp_path / "d" / "recommendations.csv"
    proc = cli(runs / "all", tmp_path / "measured.csv", "--recommendations", recs, "--out", tmp_path / "m")
    assert proc.returncode in (0, monitor.RETRAIN_EXIT), proc.stdout + proc.stderr
    r = json.loads((tmp_path / "m" / "monitor_report.json").read_text())["recommended"]
    predicted = pd.read_csv(recs)["YS_pred_MPa"].to_numpy()
    assert r["n"] == len(cast) and r["mae"] == pytest.approx(np.mean(np.abs(predicted - np.round(truth, 1))))
    assert 0 <= r["hit_rate"] <= 1 and "recommended recipes cast and measured" in proc.stdout


def test_the_service_query_log_joins_measured_outcomes(demo_registry, tmp_path):
    from fastapi.testclient import TestClient

    from alloy_hydra.service import create_app

    log = tmp_path / "queries.sqlite"
    with TestClient(create_app(demo_registry.path, query_log=log)) as c:
        answer = c.post("/design", json={"target_YS": 260, "target_UTS": 320, "pop_size": 60, "n_gen": 60}).json()
    assert len(answer["candidates"]) >= 4, answer
    cards = pd.DataFrame([cand["card"] for cand in answer["candidates"][:4]])
    cards["query_id"] = answer["query_id"]
    cards["YS (MPa)"] = [cand["predictions"]["YS"]["pred"] + 5.0 for cand in answer["candidates"][:4]]
    cards.to_csv(tmp_path / "measured.csv", index=False)
    subject = monitor.from_registry(demo_registry, "YS@champion")
    raw = pd.read_csv(tmp_path / "measured.csv", dtype=str, keep_default_na=False)
    raw.insert(0, "source_row", range(2, len(raw) + 2))
    report = monitor.check(subject, raw, MonitorConfig(), "measured.csv", query_log=log)
    r = report["recommended"]
    assert r["n"] == 4 and r["mae"] == pytest.approx(5.0, abs=0.01) and r["bias"] == pytest.approx(-5.0, abs=0.01)
    assert {x["query_id"] for x in r["recipes"]} == {answer["query_id"]}
    # the log is read back through the answers' own model: a row that is no design record is named, not guessed at
    import sqlite3

    with sqlite3.connect(log) as db:
        db.execute("UPDATE queries SET outputs = ? WHERE id = ?", ('{"candidates": [{"rank": 1}]}', answer["query_id"]))
    with pytest.raises(AlloyHydraError, match=f"design answer {answer['query_id']} is not a design record"):
        monitor.check(subject, raw, MonitorConfig(), "measured.csv", query_log=log)
    # a record kept as its digest (beyond the log's limit) holds nothing to join: skipped, not an error
    digest = json.dumps({"sha256": "0" * 64, "bytes": 99999, "head": "{", "truncated": True})
    with sqlite3.connect(log) as db:
        db.execute("UPDATE queries SET outputs = ? WHERE id = ?", (digest, answer["query_id"]))
    assert monitor.check(subject, raw, MonitorConfig(), "measured.csv", query_log=log)["recommended"]["n"] == 0


def test_bootstrap_over_groups():
    rng = np.random.default_rng(0)
    err = rng.normal(0, 10, 400)
    groups = np.repeat(np.arange(40), 10)
    lo, hi = monitor.bootstrap_mae(err, groups, *BOOT)
    assert lo < np.mean(np.abs(err)) < hi
    lo2, hi2 = monitor.bootstrap_mae(err[:40], groups[:40], *BOOT)  # 4 groups: a wider interval
    assert hi2 - lo2 > hi - lo
