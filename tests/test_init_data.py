"""python -m alloy_hydra.init_data: a starting data config from a lab's own file, so nobody copies the demo's."""

import subprocess
import sys

import pytest
import yaml
from conftest import HU, ROOT, UQ, compose
from omegaconf import OmegaConf

from alloy_hydra import clean, init_data
from alloy_hydra.config import DataConfig
from alloy_hydra.io import read_cards

DEMO = ROOT / "alloy_hydra" / "data" / "demo_cards.csv"


def load(path) -> DataConfig:
    text = yaml.safe_load(path.read_text())
    text.pop("defaults", None)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), text))


def test_the_guessed_config_for_the_demo_file_cleans_it(tmp_path):
    out = tmp_path / "mylab.yaml"
    cmd = [sys.executable, "-m", "alloy_hydra.init_data", str(DEMO), "--name", "mylab", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    data = load(out)
    assert not data.ground_truth and data.balance_column == "Al" and data.composition_unit == "wt%"
    assert {"Mg", "Mn", "Si", "Zr", "Sc"} <= set(data.composition_columns)
    assert data.targets["YS"] == "YS (MPa)" and data.targets["UTS"] == "UTS (MPa)"
    assert {s.column for s in data.schedules.values()} == {"Homogenization", "Recrystallization annealing"}
    assert data.numeric["grain_size_um"].kind == "grain" and data.numeric["ingot_thickness_mm"].kind == "length"
    assert data.numeric["cold_reduction_pct"].kind == "percent" and data.group_columns == ["alloy"]
    cfg = compose()
    result = clean.clean(read_cards(DEMO), data, cfg.chem_window, cfg.cleaning, source="demo")
    assert result.report["rows_kept"] > 300  # the guessed config reads the file
    again = subprocess.run([sys.executable, "-m", "alloy_hydra.init_data", str(DEMO), "--out", str(out)],
                           capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr  # never overwrites a config silently


@pytest.mark.usefixtures("needs_shared_data")
def test_the_public_files_are_read_as_their_own_configs_read_them():
    uq, _, _ = init_data.guess(read_cards(UQ))
    assert uq["targets"] == {"YS": "YTS", "UTS": "UTS", "FractureEL": "EL"} and uq["balance_column"] == "Al (min.)"
    assert {"Ageing Temp", "S/A Temp"} == {s["temp_column"] for s in uq["schedules"].values()}
    assert uq["group_columns"] == ["Alloy"] and "Reference" not in uq.get("categoricals", {}).values()
    hu, notes, _ = init_data.guess(read_cards(HU))
    assert hu["composition_unit"] == "fraction" and len(hu["composition_columns"]) >= 20
    assert set(hu["targets"]) == {"YS", "UTS", "FractureEL"}


def test_a_file_it_cannot_read_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_bytes(b"PK\x03\x04binary")
    proc = subprocess.run([sys.executable, "-m", "alloy_hydra.init_data", str(bad), "--out", str(tmp_path / "o.yaml")],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2 and "x.csv" in proc.stderr and "Traceback" not in proc.stderr
