"""End-to-end: `python run.py ...` in a subprocess, run dir under tmp_path."""

import json
import os

import pandas as pd
import pytest
from conftest import run_cli

RUN_FILES = [
    "BASE_MASTER.csv",
    "view.csv",
    "coverage.csv",
    "labels_needed.csv",
    "rejects.csv",
    "cleaning_report.json",
    "metrics.json",
    "status.json",
    "run.log",
    ".hydra/config.yaml",
]


def check_run_dir(run_dir):
    for f in RUN_FILES:
        assert (run_dir / f).exists(), f
    m = json.loads((run_dir / "metrics.json").read_text())
    for key in ("rows_in", "rows_kept", "rows_rejected", "view_rows", "time_clean_s"):
        assert key in m, key
    assert m["rows_in"] == m["rows_kept"] + m["rows_rejected"]
    assert len(pd.read_csv(run_dir / "BASE_MASTER.csv")) == m["rows_kept"]
    assert len(pd.read_csv(run_dir / "rejects.csv")) == m["rows_rejected"]
    assert len(pd.read_csv(run_dir / "view.csv")) == m["view_rows"]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "complete"
    return m


def test_default_run(tmp_path):
    proc = run_cli([f"hydra.run.dir={tmp_path}/run", "regressor.n_threads=1"])  # the default job, all stages
    assert proc.returncode == 0, proc.stderr
    m = check_run_dir(tmp_path / "run")
    assert m["data"] == "demo" and m["target"] == "YS" and m["view_rows"] > 300
    for f in (
        "split.json",
        "synthetic.csv",
        "generation_report.json",
        "model.json",
        "equation.txt",
        "validation_report.json",
        "plots/parity.png",
        "recommendations.csv",
    ):
        assert (tmp_path / "run" / f).exists(), f
    assert m["generator"] == "auto" and m["generator_used"] in ("jitter", "none") and m["regressor"] == "operon"
    assert m["holdout_r2"] > 0.5 and "design_hit_rate" in m and m.get("sr_time_cap_fired") == 0
    assert "rows_kept" in proc.stdout and str(tmp_path) in proc.stdout.replace("\n", "").replace("│", "")
    # the method chosen, named as equation.txt names it; each recipe says whether this run's holdout vouches for
    # σ and the domain flag (stages.design.weak_answer), with the reason in its note
    from alloy_hydra.stages.design import weak_answer

    source = pd.read_csv(tmp_path / "run" / "pareto_front.csv").query("chosen")["source"].iat[0]
    assert m["method"].startswith(f"operon front → {source} member, ") and m["method"].endswith(" terms")
    recs = pd.read_csv(tmp_path / "run" / "recommendations.csv")
    weak = weak_answer(m)
    assert (recs["validated"] == (not weak)).all() and bool(weak) == ("recipes_unvalidated" in m)
    assert recs["note"].fillna("").str.startswith("UNVALIDATED").all() == bool(weak)


@pytest.mark.parametrize(
    "args",
    [
        ["data=uq_al", "target=UTS"],
        ["data=hu2021", "target=YS", "chem_window=wrought"],
    ],
)
def test_real_data_runs(needs_shared_data, tmp_path, args):
    proc = run_cli([*args, "stages=[clean]", f"hydra.run.dir={tmp_path}/run"])
    assert proc.returncode == 0, proc.stderr
    m = check_run_dir(tmp_path / "run")
    assert m["rows_in"] in (1150, 1154)


def test_relative_data_path_resolves_against_the_callers_directory(tmp_path):
    from alloy_hydra.demo import demo_path

    (tmp_path / "mine.csv").write_bytes(demo_path().read_bytes())
    proc = run_cli(["data.path=mine.csv", "stages=[clean]", "hydra.run.dir=out"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    check_run_dir(tmp_path / "out")


def test_bad_data_gives_a_named_error_and_no_complete_run_dir(tmp_path):
    from alloy_hydra.demo import demo_path

    lines = demo_path().read_text().splitlines()
    from alloy_hydra.demo import HEADER

    cells = lines[5].split(",")
    cells[HEADER.index("Mn")] = "0.3x5"  # a typo in a composition cell of spreadsheet row 6
    lines[5] = ",".join(cells)
    bad = tmp_path / "cards.csv"
    bad.write_text("\n".join(lines) + "\n")
    proc = run_cli([f"data.path={bad}", f"hydra.run.dir={tmp_path}/run"])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2
    assert "Traceback" not in out and "row 6" in out and "'Mn'" in out and "not a number" in out and str(bad) in out
    assert not (tmp_path / "run" / "metrics.json").exists()
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and "row 6" in status["error"]


def test_missing_file_and_unknown_target(tmp_path):
    proc = run_cli(["data.path=nowhere.csv", f"hydra.run.dir={tmp_path}/a"])
    assert proc.returncode == 2 and "file not found" in proc.stdout + proc.stderr
    assert not (tmp_path / "a").exists()  # a config error leaves no run dir behind
    proc = run_cli(["data=uq_al", f"hydra.run.dir={tmp_path}/c"], env={"ALLOY_HYDRA_DATA": str(tmp_path / "none")})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "python -m alloy_hydra.datasets fetch uq_al" in out and "Traceback" not in out
    assert not (tmp_path / "c").exists()
    proc = run_cli(["target=XS", f"hydra.run.dir={tmp_path}/b"])
    assert proc.returncode != 0 and "XS" in proc.stderr and not (tmp_path / "b" / "metrics.json").exists()


def test_a_killed_run_reads_as_interrupted_not_running(tmp_path):
    """status.json carries the pid and host of the run that wrote "running": when that process is gone, every
    reader (compare, sweep reports, the registry) sees "interrupted"."""
    import socket
    import subprocess
    import sys

    from alloy_hydra.io import read_run, write_json

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "status.json", {"status": "running", "pid": int(gone.stdout), "host": socket.gethostname()})
    assert read_run(run)[2]["status"] == "interrupted"
    write_json(run / "status.json", {"status": "running", "pid": os.getpid(), "host": socket.gethostname()})
    assert read_run(run)[2]["status"] == "running"  # alive: still running
    write_json(run / "status.json", {"status": "running", "pid": int(gone.stdout), "host": "another-host"})
    assert read_run(run)[2]["status"] == "running"  # another machine's process cannot be checked from here


def test_progress_reaches_the_log_when_output_is_not_a_terminal(monkeypatch, caplog):
    import io
    import logging

    from alloy_hydra import report

    monkeypatch.setattr(report, "LOG_EVERY_S", 0.0)
    ticker = report.LogTicker("training hinge", 4, stream=io.StringIO())  # a file, not a terminal
    with caplog.at_level(logging.INFO, logger="alloy_hydra.progress"):
        for k in range(4):
            ticker.update(advance=1, what=f"fold {k + 1}")
    lines = [r.getMessage() for r in caplog.records if r.name == "alloy_hydra.progress"]
    assert len(lines) == 4 and lines[0].startswith("training hinge: 1 of 4 (25 %), about") and "fold 1" in lines[0]
    assert lines[-1].startswith("training hinge: 4 of 4 (100 %)")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    caplog.clear()
    quiet = report.LogTicker("x", 2, stream=Terminal())
    quiet.update(advance=2)
    assert not [r for r in caplog.records if r.name == "alloy_hydra.progress"]  # the bar shows it there
