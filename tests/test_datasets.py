"""The public datasets: fetched from the source into a cache, every copy checked before use, never the network
here (pooch's download is replaced by the local copies)."""

import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import DATA_CACHE, ROOT, SHARED_DATA, compose

from alloy_hydra import datasets
from alloy_hydra.config import data_file
from alloy_hydra.errors import AlloyHydraError, ConfigError

pytestmark = pytest.mark.usefixtures("needs_shared_data")


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_data_configs_read_the_cached_copy_and_say_how_to_get_it(empty_cache):
    with pytest.raises(ConfigError, match="python -m alloy_hydra.datasets fetch uq_al"):
        data_file(compose(["data=uq_al"]).data)
    datasets.add("uq_al", SHARED_DATA / "uq_al_alloys.csv")
    assert data_file(compose(["data=uq_al"]).data) == empty_cache / "uq_al_alloys.csv"
    own = empty_cache.parent / "mine.csv"
    own.write_text("x\n1\n")
    assert data_file(compose(["data=uq_al", f"data.path={own}"]).data) == own  # data.path wins


@pytest.mark.parametrize("name", list(datasets.DATASETS))
def test_a_changed_copy_is_refused(empty_cache, tmp_path, name):
    ds = datasets.DATASETS[name]
    table = pd.read_csv(SHARED_DATA / ds.file)
    table.iloc[5, 3] = 99.0  # one cell
    bad = tmp_path / ds.file
    table.to_csv(bad, index=False)
    with pytest.raises(AlloyHydraError, match=name):
        datasets.check(name, bad, bytes_too=False)  # the content fingerprint alone catches it
    with pytest.raises(AlloyHydraError):
        datasets.add(name, bad)
    assert not (empty_cache / ds.file).exists()


def test_fetch_downloads_checks_converts_and_caches(empty_cache, tmp_path, monkeypatch):
    import pooch

    sheet = tmp_path / "dataset.xlsx"  # the uq source is a spreadsheet
    pd.read_csv(SHARED_DATA / "uq_al_alloys.csv").to_excel(sheet, index=False)
    sources = {"xlsx": sheet, "csv": SHARED_DATA / "hu2021_al_data.csv"}
    asked = []

    def retrieve(url, known_hash, path, progressbar):
        asked.append((url, known_hash))
        return str(sources[url.rsplit(".", 1)[1]])

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    for name in datasets.DATASETS:
        got = datasets.fetch(name)
        assert got == empty_cache / datasets.DATASETS[name].file
        datasets.check(name, got, bytes_too=False)
    assert asked[1][1] == f"sha256:{datasets.DATASETS['hu2021'].sha256}"  # pooch checks the published bytes
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: pytest.fail("a cached dataset is not fetched again"))
    datasets.fetch("hu2021")


def test_a_failed_download_is_one_line_and_leaves_nothing(empty_cache, monkeypatch):
    import pooch

    def offline(*a, **k):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(AlloyHydraError, match="could not fetch https://"):
        datasets.fetch("uq_al")
    assert not list(empty_cache.glob("*.csv"))


def test_the_command_lists_and_adds(empty_cache):
    env = {**os.environ, datasets.CACHE_ENV: str(empty_cache)}
    cmd = [sys.executable, "-m", "alloy_hydra.datasets"]
    out = subprocess.run([*cmd, "list"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0 and "not fetched" in out.stdout and "github.com/UQ43815685" in out.stdout
    bad = empty_cache.parent / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    out = subprocess.run([*cmd, "add", "hu2021", str(bad)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "not the published hu2021" in out.stderr
    out = subprocess.run(
        [*cmd, "add", "hu2021", str(SHARED_DATA / "hu2021_al_data.csv")], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0 and (empty_cache / "hu2021_al_data.csv").is_file()


def test_the_suite_reads_the_datasets_through_the_cache():
    assert os.environ[datasets.CACHE_ENV] == str(DATA_CACHE) and datasets.path("uq_al").parent == DATA_CACHE


def test_paths_data_dir_names_the_cache_a_run_reads(empty_cache, tmp_path):
    """conf/paths: paths.data_dir (a lab's dataset folder) beats $ALLOY_HYDRA_DATA, for runs and the command."""
    lab = tmp_path / "lab"
    cfg = compose(["data=uq_al", f"paths.data_dir={lab}"])
    with pytest.raises(ConfigError, match=f"datasets --dir {lab} fetch uq_al"):
        data_file(cfg.data, cfg.paths.data_dir)
    cmd = [sys.executable, "-m", "alloy_hydra.datasets", "--dir", str(lab), "add", "uq_al"]
    out = subprocess.run([*cmd, str(SHARED_DATA / "uq_al_alloys.csv")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert data_file(cfg.data, cfg.paths.data_dir) == lab / "uq_al_alloys.csv"
    assert not (empty_cache / "uq_al_alloys.csv").exists()  # the environment's cache was not used
    assert compose(["data=uq_al"]).paths.data_dir == str(empty_cache)  # unset: $ALLOY_HYDRA_DATA
