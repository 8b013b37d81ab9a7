"""Campaign state that survives a kill: every step is the old or the new state, never a third (issue 29)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from test_campaign import TINY, biased_cards

from alloy_hydra import campaign

PAUSE = 0.2  # s between the steps of a commit (fault injection, campaign._pause)


def snapshot(d):
    return tuple((d / name).read_text() for name in campaign.STATE_FILES)


def measured_file(tmp_path):
    cards = pd.read_csv(ROOT / "alloy_hydra" / "data" / "demo_cards.csv", dtype=str, keep_default_na=False)
    rows = cards[cards["YS (MPa)"] != ""].head(4).assign(card=[f"m-{i}" for i in range(4)])
    rows.to_csv(tmp_path / "measured.csv", index=False)
    return tmp_path / "measured.csv"


def expected_after_add(d, measured, scratch):
    """The new state: the same add, completed, on a copy of the old state."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(d, scratch)
    campaign.Campaign.load(scratch).add_measurements(measured)
    return snapshot(scratch)


@pytest.mark.slow
def test_fifty_kills_of_add_leave_the_old_or_the_new_state(tmp_path):
    d = tmp_path / "c"
    campaign.Campaign.create(d, {"YS": 260.0}, biased_cards().head(40), overrides=TINY)
    measured = measured_file(tmp_path)
    env = {**os.environ, "ALLOY_HYDRA_COMMIT_PAUSE": str(PAUSE), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "alloy_hydra.campaign", "add", str(d), str(measured)]
    rng = np.random.default_rng(0)
    outcomes = {"old": 0, "new": 0}
    in_commit = 0
    full = None  # how long a whole `add` takes here, for kills at random times over all of it
    for k in range(50):
        old = snapshot(d)
        new = expected_after_add(d, measured, tmp_path / "scratch")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        if k % 2 == 0 or full is None:  # inside the commit: wait for it to start, then kill within its steps
            line = proc.stderr.readline()
            if k % 2 == 0 and line.startswith("commit: start"):
                time.sleep(rng.uniform(0, 5 * PAUSE))
                in_commit += 1
            elif full is None:
                proc.wait()
                full = time.monotonic() - t0
        else:  # at a random moment of the whole command
            time.sleep(rng.uniform(0, full))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        state = snapshot(d) if not (d / campaign.JOURNAL).exists() else None
        campaign.Campaign.load(d)  # finishes or drops what the kill left
        after = snapshot(d)
        assert after in (old, new), f"kill {k}: a third state"
        outcomes["old" if after == old else "new"] += 1
        if state is not None:
            assert state in (old, new), f"kill {k}: the files themselves are a third state"
    assert in_commit >= 20 and outcomes["old"] and outcomes["new"], outcomes


def test_a_damaged_state_is_refused_by_name(tmp_path):
    d = tmp_path / "c"
    campaign.Campaign.create(d, {"YS": 260.0}, biased_cards().head(20), overrides=TINY)
    cards = (d / "cards.csv").read_text()
    (d / "cards.csv").write_text(cards[: len(cards) // 2])  # cut mid-row, as a kill of an old version did
    with pytest.raises(campaign.CampaignError, match="cards.csv"):
        campaign.Campaign.load(d)
    (d / "cards.csv").write_text(cards)
    campaign.Campaign.load(d)
    (d / "campaign.json").write_text("{")
    with pytest.raises(campaign.CampaignError, match="campaign.json"):
        campaign.Campaign.load(d)


def test_an_uncommitted_step_is_dropped_and_a_committed_one_finished(tmp_path):
    d = tmp_path / "c"
    camp = campaign.Campaign.create(d, {"YS": 260.0}, biased_cards().head(20), overrides=TINY)
    old = snapshot(d)
    journal = d / campaign.JOURNAL
    journal.mkdir()
    (journal / "cards.csv").write_text("half a file")
    assert snapshot(campaign.Campaign.load(d).path) == old and not journal.exists()
    camp.state["explore"] = 0.7
    with campaign.locked(d):
        camp.commit()
    assert campaign.Campaign.load(d).state["explore"] == 0.7 and not journal.exists()


def test_one_command_at_a_time(tmp_path):
    d = tmp_path / "c"
    campaign.Campaign.create(d, {"YS": 260.0}, biased_cards().head(20), overrides=TINY)
    from filelock import FileLock

    with FileLock(str(d / campaign.LOCK)):
        proc = subprocess.run(
            [sys.executable, "-c", f"from alloy_hydra import campaign; campaign.Campaign.load({str(d)!r}).save()"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    assert proc.returncode != 0 and "another campaign command is running" in proc.stderr
