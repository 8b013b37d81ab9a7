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
from alloy_hydra.config import CampaignConfig

YS_260, ONLY_TINY = campaign.Goal({"YS": 260.0}), CampaignConfig(overrides=TINY)

PAUSE = 0.2  # s between the steps of a commit (fault injection, campaign._pause)


def snapshot(d):
    return tuple((d / name).read_text() for name in campaign.STATE_FILES)


def measured_file(tmp_path, k=0):
    """Four measured cards of unplanned experiments with ids of their own (k-th file)."""
    cards = pd.read_csv(ROOT / "alloy_hydra" / "data" / "demo_cards.csv", dtype=str, keep_default_na=False)
    rows = cards[cards["YS (MPa)"] != ""].tail(4).assign(file_name=[f"k{k}-{i}" for i in range(4)])
    rows.to_csv(tmp_path / f"measured{k}.csv", index=False)
    return tmp_path / f"measured{k}.csv"


def expected_after_add(d, measured, scratch):
    """The new state: the same add, completed, on a copy of the old state."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(d, scratch)
    campaign.Campaign.load(scratch).add_measurements(measured, allow_new=True)
    return snapshot(scratch)


@pytest.mark.slow
def test_fifty_kills_of_add_leave_the_old_or_the_new_state(tmp_path):
    d = tmp_path / "c"
    campaign.Campaign.create(d, biased_cards().head(40), YS_260, ONLY_TINY)
    env = {**os.environ, "ALLOY_HYDRA_COMMIT_PAUSE": str(PAUSE), "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(0)
    outcomes = {"old": 0, "new": 0}
    in_commit = 0
    full = None  # how long a whole `add` takes here, for kills at random times over all of it
    for k in range(50):
        old = snapshot(d)
        measured = measured_file(tmp_path, k)  # new ids each time: the same file twice is refused
        cmd = [sys.executable, "-m", "alloy_hydra.campaign", "add", str(d), str(measured), "--allow-new"]
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
    campaign.Campaign.create(d, biased_cards().head(20), YS_260, ONLY_TINY)
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
    camp = campaign.Campaign.create(d, biased_cards().head(20), YS_260, ONLY_TINY)
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
    campaign.Campaign.create(d, biased_cards().head(20), YS_260, ONLY_TINY)
    from filelock import FileLock

    with FileLock(str(d / campaign.LOCK)):
        proc = subprocess.run(
            [sys.executable, "-c", f"from alloy_hydra import campaign; campaign.Campaign.load({str(d)!r}).save()"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    assert proc.returncode != 0 and "another campaign command is running" in proc.stderr


def test_bad_measurements_are_refused_whole_and_name_every_cell(tmp_path):
    d = tmp_path / "c"
    camp = campaign.Campaign.create(d, biased_cards().head(30), YS_260, ONLY_TINY)
    camp.state["pending"] = [{"file_name": "p-1"}, {"file_name": "p-2"}]
    with campaign.locked(d):
        camp.commit()
    before = snapshot(d)
    rows = pd.read_csv(ROOT / "alloy_hydra" / "data" / "demo_cards.csv", dtype=str, keep_default_na=False)
    rows = rows[rows["YS (MPa)"] != ""].head(4).reset_index(drop=True)
    rows["file_name"] = ["p-1", "p-1", "zz-9", "p-2"]  # a duplicate, an unknown id, a pending one
    rows.loc[3, "YS (MPa)"] = "abc"
    rows.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(campaign.CampaignError) as err:
        campaign.Campaign.load(d).add_measurements(tmp_path / "m.csv")
    text = str(err.value)
    assert "row 2" in text and "row 3" in text and "more than once" in text  # both rows of the duplicate
    assert "row 4, column 'file_name', value 'zz-9'" in text and "not a pending experiment" in text
    assert "row 5, column 'YS (MPa)', value 'abc'" in text and "must be a number" in text
    assert snapshot(d) == before  # nothing written
    rows.drop(columns="file_name").to_csv(tmp_path / "noid.csv", index=False)
    with pytest.raises(campaign.CampaignError, match="no 'file_name' column"):
        campaign.Campaign.load(d).add_measurements(tmp_path / "noid.csv")
    rows.rename(columns={"YS (MPa)": "YS (Mpa)"}).to_csv(tmp_path / "typo.csv", index=False)
    with pytest.raises(campaign.CampaignError, match="none of the campaign's label columns"):
        campaign.Campaign.load(d).add_measurements(tmp_path / "typo.csv")
    assert snapshot(d) == before
    # a clean file of pending and (allowed) unplanned experiments goes in, and closes the pending ones
    good = rows.iloc[[0, 2]].assign(file_name=["p-1", "new-1"])
    good.to_csv(tmp_path / "good.csv", index=False)
    with pytest.raises(campaign.CampaignError, match="new-1"):
        campaign.Campaign.load(d).add_measurements(tmp_path / "good.csv")
    added = campaign.Campaign.load(d).add_measurements(tmp_path / "good.csv", allow_new=True)
    assert added["measured"] == 2 and [p["file_name"] for p in campaign.Campaign.load(d).state["pending"]] == ["p-2"]
    with pytest.raises(campaign.CampaignError, match="already in the campaign"):  # the same file twice
        campaign.Campaign.load(d).add_measurements(tmp_path / "good.csv", allow_new=True)


def test_init_refuses_unusable_cards_and_writes_nothing(tmp_path):
    garbage = pd.DataFrame({"colour": ["red", "blue"], "mood": ["ok", "fine"]})
    with pytest.raises(campaign.CampaignError, match="cannot start a campaign"):
        campaign.Campaign.create(tmp_path / "c", garbage, YS_260, ONLY_TINY)
    unlabelled = biased_cards().head(20).assign(**{"YS (MPa)": ""})
    with pytest.raises(campaign.CampaignError, match="no card carries a label of YS"):
        campaign.Campaign.create(tmp_path / "c", unlabelled, YS_260, ONLY_TINY)
    assert not (tmp_path / "c").exists()
