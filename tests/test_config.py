import pytest
from conftest import ROOT, compose
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from alloy_hydra import config

GROUPS = sorted(p.name for p in (ROOT / "conf").iterdir() if p.is_dir())
OPTIONS = [
    (g, p.stem)
    for g in GROUPS
    if g not in ("sweeps", "experiment", "debug")  # _global_ groups: they set other groups' keys
    for p in sorted((ROOT / "conf" / g).glob("*.yaml"))
]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


def test_defaults_are_the_documented_main_job():
    cfg = compose()
    assert cfg.data.name == "demo" and cfg.target.name == "YS" and cfg.stages[0] == "clean"


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option):
    cfg = compose([f"{group}={option}"], as_dict=True)
    OmegaConf.to_container(cfg, resolve=True)
    assert cfg[group].name == option
    assert getattr(config.typed(cfg), group).name == option  # and it converts to the typed dataclasses


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_an_experiment_is_the_readme_command_it_names_and_the_command_line_still_wins(name):
    """experiment=uq_al_uts is `data=uq_al chem_window=wrought target=UTS` (its name says which data and target);
    an option given beside it on the command line overrides the experiment's."""
    data, target = name.rsplit("_", 1)
    cfg = compose([f"experiment={name}"])
    assert (cfg.data.name, cfg.target.name.lower(), cfg.chem_window.name) == (data, target, "wrought")
    assert cfg.data.dataset == data and cfg.data.path is None  # the cached public file
    other = "FractureEL"
    assert compose([f"experiment={name}", f"target={other}"]).target.name == other


def test_every_target_has_unit_range_and_physics():
    for _, name in [o for o in OPTIONS if o[0] == "target"]:
        t = compose([f"target={name}"]).target
        from alloy_hydra.physics import check_spec

        assert t.unit and t.clip[0] < t.clip[1] and t.n_per_class > 0
        assert t.physics and {check_spec(v)[0] for v in t.physics.values()} <= {-1, 1}


def test_strict_and_sparse_presets_match_the_issue():
    strict, sparse = compose(["thresholds=strict"]).thresholds, compose(["thresholds=sparse"]).thresholds
    assert (
        strict.ks_p_min,
        strict.balance_ratio_max,
        strict.corr_mae_max,
        strict.near_duplicates_max_pct,
        strict.clip_rate_max_pct,
    ) == (0.01, 2.5, 0.12, 3, 5)
    assert (
        sparse.ks_p_min,
        sparse.balance_ratio_max,
        sparse.corr_mae_max,
        sparse.near_duplicates_max_pct,
        sparse.clip_rate_max_pct,
    ) == (0.001, 5, 0.20, 100, 75)


@pytest.mark.parametrize(
    "override",
    ["data.pathh=x", "target.unitt=MPa", "sed=1", "thresholds.ks_p_min=abc", "cleaning.homog.min_temp_C=hot"],
)
def test_typos_fail_before_any_work(override):
    with pytest.raises(ConfigCompositionException):
        compose([override])


@pytest.mark.parametrize("override", ["target=XS", "data=nope", "chem_window=aa6xxx"])
def test_unknown_options_fail(override):
    with pytest.raises(MissingConfigException):
        compose([override])


def test_help_is_the_apps_own_and_lists_every_option():
    """`python run.py --help`: what the tool does, the stages, every option of every config group (so a new
    option file without a help line fails here), and no internal schema names."""
    import subprocess
    import sys

    from conftest import ROOT

    out = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--help"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert "alloy_hydra" in out and "base_" not in out and "python -m alloy_hydra.predict" in out
    for stage in ("clean", "split", "generate", "qc", "train", "audit", "design"):
        assert stage in out
    for group in sorted(p for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name != "hydra"):
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(group.name + " ")), "")
        for option in sorted(f.stem for f in group.glob("*.yaml")):
            assert option in line.split(), (group.name, option, line)


@pytest.mark.parametrize(
    "override, text",
    [
        ("+desing.targets.YS=250", "desing (did you mean design?)"),
        ("+design.tagets.YS=1", "design.tagets"),
        ("+train.tolerance=0.1", "train.tolerance"),
    ],  # fmt: skip
)
def test_a_key_added_with_plus_is_still_checked_against_the_schema(override, text):
    from alloy_hydra.config import check_data
    from alloy_hydra.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown config key") as err:
        check_data(compose([override], as_dict=True))
    assert text in str(err.value)
    check_data(compose(["+design.fixed.recryst_type=batch"], as_dict=True))  # a free-form dict takes new keys


def test_run_py_names_a_missing_option_with_the_groups_own_options_only():
    import subprocess
    import sys

    from conftest import ROOT

    for args in (["generator=foo"], ["-m", "target=YS,UTZ"]):
        proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2 and "no such option" in proc.stderr and "base_" not in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    bad = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "+desing.x=1"], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 2 and "did you mean design?" in bad.stdout + bad.stderr
