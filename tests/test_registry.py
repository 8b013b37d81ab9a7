"""The model registry: immutable checksummed versions, aliases, safe concurrent publishing, and design from it
giving run.py's answers."""

import json
import multiprocessing
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, run_cli

from alloy_hydra import assistant, design
from alloy_hydra.model import Committee
from alloy_hydra.registry import Registry, RegistryError, parse, sha256

ACTION_PLAN = ["design.targets.YS=260", "design.targets.UTS=320", "design.targets.FractureEL=12"]
ACTION_PLAN += ["design.family=AA5xxx", "design.casting=DC", "design.max_cost=2.0"]
SMALL = ["optimizer.pop_size=40", "optimizer.n_gen=40"]


def copy_registry(reg: Registry, dest) -> Registry:
    shutil.copytree(reg.path, dest)
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return Registry(dest)


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "alloy_hydra.registry", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_a_sweep_publishes_each_targets_committee_with_its_model_card(demo_registry):
    reg = demo_registry
    assert reg.targets() == ["FractureEL", "UTS", "YS"]
    v = reg.load("YS", "champion")
    assert v.number == 1 and isinstance(v.model, Committee) and len(v.model.models) == 2
    card = v.card
    assert card["target"] == "YS" and card["unit"] == "MPa" and card["method"] == "hinge"
    assert card["combine"] == "committee" and {m["seed"] for m in card["members"]} == {1, 2}
    assert card["training"]["rows"] > 100 and card["training"]["groups"] > 50
    demo = ROOT / "alloy_hydra" / "data" / "demo_cards.csv"
    assert card["training"]["file_sha256"] == sha256(demo)
    assert 0 < card["metrics"]["holdout_r2"] <= 1 and card["metrics"]["cv_mae"] > 0
    # hinge formulas keep the audited signs while they fit, so the YS committee's checks apply and pass
    assert card["physics_pass"] is True and card["physics_checks_applicable"] >= 1 and card["coverage"]["classes"] > 0
    assert "regressor=hinge" in card["config_diff"] and card["created"] and card["package_version"]
    # the version predicts without its run dir: same numbers as the run's own models
    runs = [m["run"] for m in card["members"]]
    from alloy_hydra.model import Model

    cards = v.master.head(30)
    mean = sum(Model.load(f"{r}/model.json").report(cards)[0] for r in runs) / 2
    assert abs(v.model.report(cards)[0] - mean).max() < 1e-9
    assert not [c for c in v.master.columns if c.endswith("_RAW")]


def test_versions_are_immutable_and_aliases_move(demo_registry, tmp_path):
    reg = copy_registry(demo_registry, tmp_path / "models")
    before = {p.name: sha256(p) for p in (reg.path / "YS" / "1").iterdir()}
    sweep = reg.load("YS", 1).card["members"][0]["run"]
    assert reg.publish(sweep) == [("YS", 2)]  # a single run dir: its own model
    assert reg.resolve("YS") == 2 and reg.resolve("YS", "champion") == 1 and reg.resolve("YS", "latest") == 2
    assert {p.name: sha256(p) for p in (reg.path / "YS" / "1").iterdir()} == before
    reg.alias("YS", 2, "champion")
    assert reg.resolve("YS", "champion") == 2 and reg.load("YS", "champion").card["combine"] == "single"
    assert parse("YS@champion") == ("YS", "champion") and parse("YS:2") == ("YS", "2") and parse("YS") == ("YS", None)
    for bad in ("3", "latest", ""):
        with pytest.raises(RegistryError):
            reg.alias("YS", 1, bad)
    with pytest.raises(RegistryError, match="no version 7"):
        reg.load("YS", 7)
    with pytest.raises(RegistryError, match="no alias 'gold'"):
        reg.load("YS", "gold")
    with pytest.raises(RegistryError, match="no published model for target 'YPE'"):
        reg.load("YPE")


def test_a_tampered_or_half_written_version_is_refused(demo_registry, tmp_path):
    reg = copy_registry(demo_registry, tmp_path / "models")
    model = reg.path / "UTS" / "1" / "model_0.json"
    d = json.loads(model.read_text())
    d["sigma_resid"] = d["sigma_resid"] * 0.5
    model.write_text(json.dumps(d))
    with pytest.raises(RegistryError, match="model_0.json does not match its sha256"):
        reg.load("UTS", 1)
    manifest = reg.path / "YS" / "1" / "MANIFEST.json"
    manifest.write_text(manifest.read_text().replace('"format"', '"format" ', 1))
    with pytest.raises(RegistryError, match="MANIFEST.json does not match the index"):
        reg.load("YS", 1)
    manifest.unlink()
    with pytest.raises(RegistryError, match="half-written"):
        reg.load("YS", 1)
    # an interrupted publish leaves an unlisted temporary folder: never a version
    (reg.path / "FractureEL" / ".tmp-crashed").mkdir()
    assert reg.resolve("FractureEL") == 1 and reg.load("FractureEL").number == 1


def _publish(args):
    path, source = args
    return Registry(path).publish(source)


def test_concurrent_publishes_never_corrupt_the_index(demo_registry, tmp_path):
    reg = copy_registry(demo_registry, tmp_path / "models")
    source = reg.load("UTS", 1).card["members"][0]["run"]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        out = pool.map(_publish, [(str(reg.path), source)] * 4)
    numbers = sorted(n for o in out for _, n in o)
    assert numbers == [2, 3, 4, 5]
    idx = json.loads((reg.path / "index.json").read_text())
    assert sorted(idx["targets"]["UTS"]["versions"], key=int) == ["1", "2", "3", "4", "5"]
    for n in numbers:
        assert reg.load("UTS", n).number == n


def test_run_py_designs_from_the_registry_as_from_the_sweep_and_as_the_service(demo_registry, tmp_path):
    sweep = demo_registry.path.parent / "sweep"
    common = [*ACTION_PLAN, *SMALL, "stages=[design]", "summary=false"]
    a = run_cli([*common, "design.models=registry:champion", f"registry.path={demo_registry.path}",
                 f"hydra.run.dir={tmp_path}/reg"])  # fmt: skip
    b = run_cli([*common, f"design.models={sweep}", f"hydra.run.dir={tmp_path}/sweep"])
    assert a.returncode == 0 and b.returncode == 0, a.stderr[-2000:] + b.stderr[-2000:]
    from_registry = pd.read_csv(tmp_path / "reg" / "recommendations.csv")
    assert len(from_registry) > 0
    pd.testing.assert_frame_equal(from_registry, pd.read_csv(tmp_path / "sweep" / "recommendations.csv"))
    req = assistant.DesignRequest({"YS": 260, "UTS": 320, "FractureEL": 12}, "AA5xxx", "DC", 2.0, pop_size=40, n_gen=40)
    out = assistant.Assistant(demo_registry).design(req)
    top = design.without_units(from_registry)
    assert out["versions"] == {"YS": "YS:1", "UTS": "UTS:1", "FractureEL": "FractureEL:1"}
    for col in ("YS_pred", "UTS_pred", "FractureEL_pred", "Mg", "homog_schedule", "p_hit", "nearest_card"):
        assert out["candidates"][col].astype(str).tolist() == top[col].astype(str).tolist(), col
    # ... and over HTTP: the action plan's request gives the same ranked recipes
    from fastapi.testclient import TestClient

    from alloy_hydra.service import create_app

    body = {"target_YS": 260, "target_UTS": 320, "target_EL": 12, "alloy_family": "AA5xxx", "casting": "DC"}
    with TestClient(create_app(demo_registry.path, query_log=tmp_path / "q.sqlite")) as client:
        answer = client.post("/design", json={**body, "max_cost": 2.0, "pop_size": 40, "n_gen": 40}).json()
    assert [c["predictions"]["YS"]["pred"] for c in answer["candidates"]] == top["YS_pred"].tolist()
    assert [c["composition_wt_pct"]["Mg"] for c in answer["candidates"]] == top["Mg"].tolist()
    assert [c["process"]["homog_schedule"] for c in answer["candidates"]] == top["homog_schedule"].tolist()


def test_registry_commands(demo_registry, tmp_path):
    reg = copy_registry(demo_registry, tmp_path / "models")
    proc = cli("--registry", str(reg.path), "list")
    assert proc.returncode == 0 and "champion" in proc.stdout and "FractureEL" in proc.stdout
    proc = cli("--registry", str(reg.path), "show", "YS@champion")
    assert proc.returncode == 0 and json.loads(proc.stdout)["target"] == "YS"
    proc = cli("--registry", str(reg.path), "alias", "UTS:1", "candidate")
    assert proc.returncode == 0 and Registry(reg.path).resolve("UTS", "candidate") == 1
    for args in (["show", "YPE"], ["publish", str(tmp_path / "nowhere")], ["show", "YS:9"]):
        proc = cli("--registry", str(reg.path), *args)
        assert proc.returncode == 2 and "error" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_demo_registry_command_trains_and_publishes_champions(tmp_path):
    proc = cli("--registry", str(tmp_path / "models"), "demo", "--seeds", "1", "--", "regressor=hinge",
               "generator=none", "qc.plots=false")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    reg = Registry(tmp_path / "models")
    assert reg.targets() == ["FractureEL", "UTS", "YS"]
    assert all(reg.resolve(t, "champion") == 1 for t in reg.targets())
    assert "jobs done" in proc.stdout + proc.stderr  # the sweep's progress reaches the user


@pytest.mark.slow
@pytest.mark.parametrize("request_, floor", [(["design.targets.YS=260"], 0.8), (ACTION_PLAN, 0.5)])
def test_the_main_jobs_hit_rate_on_fixed_models_stays_above_a_floor(demo_registry, tmp_path, request_, floor):
    """The README's design claim, checked by the demo ground truth on fixed models (the registry's committees,
    the default NSGA-II budget): the share of the top 10 recipes the simulator puts within tolerance of every
    target. Deterministic (models, seeds and search are fixed), so no load can move it; measured 1.0 (YS 260) and
    0.6 (the action plan's three targets) when the floor was set."""
    registry = ["design.models=registry:champion", f"registry.path={demo_registry.path}"]
    proc = run_cli([*request_, "stages=[design]", *registry, "summary=false", f"hydra.run.dir={tmp_path}/d"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert m["design_hit_rate"] >= floor, m
