"""Sweeps, sweep-level reports, run comparison, launchers."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, run_cli

from alloy_hydra import config, selection
from alloy_hydra.cli import compare

CHEAP = ["stages=[clean,split,generate,qc]", "qc.plots=false", "target.n_per_class=5", "summary=false"]


def multirun(args):
    return run_cli(["-m", *args])


@pytest.mark.parametrize(
    "name,keys",
    [
        ("generator_grid", {"target", "generator"}),
        ("sr_grid", {"regressor.population_size", "regressor.max_length", "regressor.allowed_symbols"}),
        ("pysr_grid", {"regressor.niterations", "regressor.parsimony", "regressor.populations"}),
    ],
)
def test_sweep_files_compose(name, keys):
    cfg = config.compose([f"sweeps={name}"], as_dict=True, hydra=True)
    assert set(cfg.hydra.sweeper.params) == keys and cfg.hydra.launcher.n_jobs == 2
    assert "joblib" in cfg.hydra.launcher._target_.lower()
    if name == "generator_grid":
        assert (
            len(cfg.hydra.sweeper.params.target.split(",")) * len(cfg.hydra.sweeper.params.generator.split(",")) == 15
        )
    if name == "pysr_grid":
        assert cfg.regressor.name == "pysr"


def test_two_job_joblib_sweep_writes_runs_and_reports(tmp_path):
    proc = multirun(["generator=jitter,none", *CHEAP, f"hydra.sweep.dir={tmp_path}/sw"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    sw = tmp_path / "sw"
    runs = sorted(p.parent.parent for p in sw.glob("*/.hydra/config.yaml"))
    assert len(runs) == 2 and all((r / "metrics.json").exists() for r in runs)
    assert any("generator=jitter" in r.name for r in runs)  # dirs name their overrides
    table = pd.read_csv(sw / "comparison.csv")
    assert list(table["status"]) == ["complete", "complete"] and {"tstr_r2", "real_only_r2"} <= set(table.columns)
    sel = json.loads((sw / "selected_datasets.json").read_text())
    assert sel["YS"]["chosen_method"] in ("jitter", "none") and sel["YS"]["reason"]
    shown = proc.stdout[proc.stdout.index("sweep jobs") :]  # keys as rows, jobs as columns
    assert "status" in shown and "real_only_r2" in shown and "job 1" in shown and "…" not in shown
    assert (sw / "model_comparison.csv").exists()


def test_a_failing_job_does_not_take_the_others_down(tmp_path):
    proc = multirun(
        [
            "regressor=pysr,ridge",
            "generator=none",
            "stages=[clean,split,train,audit]",
            "summary=false",
            f"hydra.sweep.dir={tmp_path}/sw",
        ]
    )
    assert proc.returncode == 1
    table = pd.read_csv(tmp_path / "sw" / "comparison.csv").set_index("regressor")
    assert table.loc["pysr", "status"] == "failed" and "needs Julia" in table.loc["pysr", "error"]
    assert table.loc["ridge", "status"] == "complete"
    assert "Traceback" not in proc.stdout + proc.stderr  # the user's setup: one line naming the cause
    models = pd.read_csv(tmp_path / "sw" / "model_comparison.csv")
    assert models.loc[models["chosen"], "method"].tolist() == ["ridge"]
    # resume: the complete job is skipped, the failed one runs again (and fails again)
    proc = multirun(
        [
            "regressor=pysr,ridge",
            "generator=none",
            "stages=[clean,split,train,audit]",
            "resume=true",
            "summary=false",
            f"hydra.sweep.dir={tmp_path}/sw",
        ]
    )
    assert proc.returncode == 1
    ridge_dirs = [p for p in (tmp_path / "sw").iterdir() if "regressor=ridge" in p.name]
    assert len(ridge_dirs) == 1 and "is complete, skipped" in (ridge_dirs[0] / "run.log").read_text()
    # the design stage takes its model from the sweep dir (the 'chosen' column)
    models, source = selection.load_models(tmp_path / "sw")
    assert set(models) == {"YS"} and "ridge" in source.name


def test_compare_shows_exactly_the_differing_keys(tmp_path):
    for name, extra in (("a", ["seed=1"]), ("b", ["seed=2", "split.holdout_fraction=0.3"])):
        assert run_cli([*CHEAP, "stages=[clean,split]", *extra, f"hydra.run.dir={tmp_path}/{name}"]).returncode == 0
    table = compare.compare([tmp_path / "a", tmp_path / "b"])
    config_cols = [c for c in table.columns if c != "run" and not c.startswith("metric:")]
    assert config_cols == ["seed", "split.holdout_fraction"]
    assert table["metric:status"].tolist() == ["complete", "complete"]
    # a key only one run has shows as missing, not a crash
    cfg = tmp_path / "b" / ".hydra" / "config.yaml"
    cfg.write_text(cfg.read_text() + "extra_key: 5\n")
    table = compare.compare([tmp_path / "a", tmp_path / "b"])
    assert table["extra_key"].tolist() == [compare.MISSING, 5]
    out = tmp_path / "t.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "alloy_hydra.compare",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--csv",
            str(out),
            "--markdown",
            str(tmp_path / "t.md"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0 and out.exists() and "seed" in (tmp_path / "t.md").read_text()


def test_compare_shows_a_changed_group_as_one_line_and_reads_at_80_columns(tmp_path):
    runs = []
    for name, extra in (("ridge", ["regressor=ridge"]), ("gbm", ["regressor=gbm", "regressor.max_iter=50"])):
        runs.append(tmp_path / name)
        proc = run_cli(
            [
                *extra,
                "generator=none",
                "stages=[clean,split,train]",
                "train.ensemble=2",
                "summary=false",
                f"hydra.run.dir={runs[-1]}",
            ]
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    table = compare.compare(runs)
    config_cols = [c for c in table.columns if c != "run" and not c.startswith("metric:")]
    assert config_cols == ["regressor", "regressor.max_iter"]  # not regressor._target_, .alphas, ...
    assert table["regressor"].tolist() == ["ridge", "gbm"]
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "alloy_hydra.compare", *map(str, runs)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )  # stdout is a pipe here
    assert proc.returncode == 0 and "regressor: ridge → gbm" in proc.stdout
    assert "regressor.max_iter: — → 50" in proc.stdout and "holdout_r2" not in proc.stdout  # no audit stage
    assert "cv_mae" in proc.stdout and "complete" in proc.stdout and "…" not in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines() if not line.startswith("run ")) <= 80


@pytest.mark.slow
def test_submitit_local_two_job_sweep(tmp_path):
    proc = multirun(
        [
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "generator=jitter,none",
            *CHEAP,
            f"hydra.sweep.dir={tmp_path}/sw",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(tmp_path / "sw" / "comparison.csv")
    assert len(table) == 2 and (table["status"] == "complete").all()


def test_the_dataset_rule_considers_a_blend_and_decides_on_cv_never_the_holdout():
    from alloy_hydra import sweep

    job = {"status": "complete", "target": "YS", "qc_pass": True, "real_only_r2": 0.70, "regressor": "hinge"}
    table = pd.DataFrame(
        [
            {**job, "run_dir": "0", "generator": "jitter", "cv_mae": 21.0, "tstr_r2": 0.60, "aug_r2": 0.72},
            {**job, "run_dir": "1", "generator": "blend", "cv_mae": 19.0, "tstr_r2": 0.50, "aug_r2": 0.60},
            {
                **job,
                "run_dir": "2",
                "generator": "ctgan",
                "cv_mae": 15.0,
                "tstr_r2": 0.90,
                "aug_r2": 0.80,
                "qc_pass": False,
            },
            {**job, "run_dir": "3", "generator": "none", "cv_mae": 20.0, "tstr_r2": None, "aug_r2": None},
        ]
    )
    sel = sweep.select_datasets(table)["YS"]
    # blend wins on CV although its holdout utility is the worst: the holdout is reported, never decides
    assert sel["chosen_method"] == "blend" and sel["run_dir"] == "1"  # QC-failing ctgan is not eligible
    assert {c["generator"] for c in sel["candidates"]} == {"jitter", "blend", "ctgan"}
    assert sel["holdout_after_choice"]["aug_r2"] == 0.60
    table.loc[1, "cv_mae"] = 20.5  # blend augmentation no longer beats real-only on CV
    sel = sweep.select_datasets(table)["YS"]
    assert sel["chosen_method"] == "none" and sel["best_generator"] == "blend"
    table.loc[1, "aug_r2"] = 0.99  # a holdout figure cannot bring it back
    assert sweep.select_datasets(table)["YS"]["chosen_method"] == "none"
    no_real = table[table["generator"] != "none"].assign(cv_mae=[21.0, 19.0, 15.0])
    sel = sweep.select_datasets(no_real)["YS"]
    assert sel["chosen_method"] == "none" and "add generator=none" in sel["reason"]


def test_the_committee_is_the_chosen_configurations_seeds():
    """model_comparison.csv: `chosen` is one run per target; `committee` adds the runs of the same method and
    generator with the same physics verdict (the seeds design.combine=committee averages), nothing else."""
    from alloy_hydra import sweep

    rows = [
        ("operon", "none", True, 0.90),
        ("operon", "none", True, 0.80),
        ("operon", "none", False, 0.95),
        ("ridge", "none", True, 0.85),
        ("operon", "jitter", True, 0.70),
    ]
    table = pd.DataFrame(
        [
            {
                "status": "complete",
                "target": "YS",
                "regressor": m,
                "generator": g,
                "physics_pass": p,
                "holdout_r2": r,
                "run_dir": f"r{i}",
                "cv_mae": 1.0,
                "holdout_mae": 1.0,
                "complexity": 10,
            }
            for i, (m, g, p, r) in enumerate(rows)
        ]
    )
    mt = sweep.model_table(table)
    mt = mt[~mt["baseline"]].set_index("run_dir")
    assert mt.index[mt["chosen"]].tolist() == ["r0"]
    assert mt.index[mt["committee"]].tolist() == ["r0", "r1"]


def test_job_dirs_are_found_when_an_override_nests_them(tmp_path):
    """A list override holding '/' (data.interactions=['1/sqrt(d)']) nests the job dir; sweeps, compare and
    design.models still find it."""
    from alloy_hydra.io import job_dirs

    flat, nested = tmp_path / "0_seed=1", tmp_path / "1_data.interactions=['1" / "sqrt(d)']"
    for d in (flat, nested):
        (d / ".hydra").mkdir(parents=True)
        (d / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (nested / "model.json").write_text("{}")
    assert job_dirs(tmp_path) == sorted([flat, nested])
    assert job_dirs(tmp_path, "model.json") == [nested]
    assert compare.run_dirs([tmp_path]) == sorted([flat, nested])


def test_a_sweep_knows_its_job_count_and_counts_jobs_done(tmp_path):
    from alloy_hydra import sweep

    assert sweep.n_jobs(config.compose(["sweeps=generator_grid"], hydra=True)) == 15  # 5 targets x 3 generators
    from omegaconf import OmegaConf

    cli = OmegaConf.create(
        {
            "hydra": {
                "sweeper": {"params": {"target": "YS,UTS", "seed": "1,2,3"}},
                "overrides": {"task": ["seed=1,2", "regressor=hinge", "x=range(0,4)"]},
            }
        }
    )
    assert sweep.n_jobs(cli) == 2 * 2 * 4  # the command line's seed=1,2 wins over the file's three seeds
    for i, status in enumerate(["complete", "failed", "running"]):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "status.json").write_text(json.dumps({"status": status}))
    assert sweep.jobs_done(tmp_path) == 2
