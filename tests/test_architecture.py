"""The seams of issue 20: stage dependencies come from the stage signatures, one model-selection rule, every
default in the config schema, the config typed once at the edge."""

import dataclasses
import inspect
import json

import pandas as pd
import pytest
from conftest import ROOT, compose

from alloy_hydra import config, design, factory, generate, regress, selection, stages
from alloy_hydra.errors import ConfigError


def test_stage_dependencies_are_read_from_the_stage_signatures():
    assert list(stages.STAGES) == list(config.STAGES)
    assert stages.needs("train") == (["split"], ["generate", "qc"])
    assert stages.needs("design") == ([], ["clean", "train"])
    with pytest.raises(ConfigError, match=r"stage 'qc' needs \['split', 'generate'\]"):
        stages.check_stages(["clean", "qc"])
    assert stages.check_stages(["clean", "split", "train", "audit"]) == ["clean", "split", "train", "audit"]


def test_stages_hand_on_typed_results(tmp_path):
    cfg = compose(["generator=jitter", "target.n_per_class=3", "summary=false", "qc.plots=false"])
    done = stages.execute(cfg, tmp_path, ["clean", "split", "generate"])
    assert isinstance(done["split"], stages.split.Split) and isinstance(done["generate"], stages.generate.Generated)
    assert done["generate"].used == "jitter" and len(done["generate"].synth_cards) > 0
    assert not set(done["generate"].synth_cards["source_group"]) & set(done["split"].holdout["group"])


def test_the_config_is_typed_once_and_objects_come_from_their_target():
    cfg = compose(["optimizer=random"])
    assert isinstance(cfg, config.Config) and isinstance(cfg.design, config.DesignConfig)
    assert isinstance(factory.optimizer(cfg), design.RandomSearch)
    assert isinstance(factory.optimizer(compose()), design.NSGA2Search)
    assert isinstance(factory.regressor(compose(["regressor=hinge"]), ["a"]), regress.HingeRegressor)
    assert isinstance(factory.generator(compose(["generator=jitter"])), generate.Jitter)


@pytest.mark.parametrize(
    "estimator,schema",
    [
        (regress.OperonRegressor, config.OperonConfig),
        (regress.HingeRegressor, config.HingeConfig),
        (regress.PySRAdaptor, config.PySRConfig),
        (regress.RidgeModel, config.RidgeConfig),
        (regress.GBMModel, config.GBMConfig),
        (generate.Jitter, config.JitterConfig),
        (generate.SDVGenerator, config.SDVConfig),
        (generate.Blend, config.BlendConfig),
    ],
)
def test_an_estimator_built_in_code_has_the_configs_defaults(estimator, schema):
    params = inspect.signature(estimator).parameters
    # (a blend's parts and shares have no default: empty in the schema, None in code)
    skip = ("parts", "shares")
    shared = [f for f in dataclasses.fields(schema) if f.name in params and f.default != "???" and f.name not in skip]
    assert shared, estimator
    for f in shared:
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        got = params[f.name].default
        assert (list(got) if isinstance(got, tuple) else got) == default, f"{estimator.__name__}.{f.name}"


def test_one_selection_rule_physics_first_then_cv_committee_is_the_same_configuration():
    runs = pd.DataFrame(
        [
            {
                "target": "YS",
                "method": "operon",
                "generator": "auto",
                "train_data": "real",
                "physics_pass": True,
                "cv_mae": 20.0,
            },
            {
                "target": "YS",
                "method": "gbm",
                "generator": "auto",
                "train_data": "real",
                "physics_pass": False,
                "cv_mae": 10.0,
            },
            {
                "target": "YS",
                "method": "operon",
                "generator": "auto",
                "train_data": "real",
                "physics_pass": True,
                "cv_mae": 22.0,
            },
            {
                "target": "YS",
                "method": "operon",
                "generator": "auto",
                "train_data": "synthetic",
                "physics_pass": True,
                "cv_mae": 30.0,
            },
            {
                "target": "UTS",
                "method": "ridge",
                "generator": "none",
                "train_data": "real",
                "physics_pass": None,
                "cv_mae": 15.0,
            },
        ]
    )
    out = selection.choose(runs)
    assert out["chosen"].tolist() == [True, False, False, False, True]  # a physics pass beats a better CV MAE
    assert out["committee"].tolist() == [True, False, True, False, True]  # other training data: not the seeds
    assert out["order"].tolist() == [0, 3, 1, 2, 0]  # the committee is loaded best first


def test_a_run_dir_from_an_older_version_still_loads(tmp_path):
    cfg = compose(as_dict=True)
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=True)
    raw["target"]["retired_key"] = 1  # a key this version no longer has
    raw["generator"]["n_per_class"] = None  # generator.n_per_class moved to the target (issue 20)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(raw))
    loaded = config.load_run_config(tmp_path)
    assert isinstance(loaded.data, config.DataConfig) and loaded.target.name == "YS"
    with pytest.raises(ConfigError, match="not a run dir"):
        config.load_run_config(tmp_path / "nowhere")


def test_conf_files_do_not_restate_the_schema():
    """A value in a conf/ file that equals the schema's default is a second copy of that fact."""
    import yaml

    schemas = {
        "data": config.DataConfig,
        "paths": config.PathsConfig,
        "chem_window": config.ChemWindowConfig,
        "thresholds": config.ThresholdsConfig,
        "target": config.TargetConfig,
        "optimizer": config.OptimizerConfig,
        "generator/jitter": config.JitterConfig,
        "generator/ctgan": config.SDVConfig,
        "generator/gaussiancopula": config.SDVConfig,
        "generator/auto": config.AutoConfig,
        "generator/blend": config.BlendConfig,
        "generator/none": config.GeneratorConfig,
        "regressor/operon": config.OperonConfig,
        "regressor/hinge": config.HingeConfig,
        "regressor/pysr": config.PySRConfig,
        "regressor/ridge": config.RidgeConfig,
        "regressor/gbm": config.GBMConfig,
    }
    groups = {p.parent.name for p in (ROOT / "conf").glob("*/*.yaml")} - {"sweeps", "experiment", "debug"}
    covered = {w.split("/")[0] for w in schemas}
    assert groups <= covered, f"conf groups without a schema check: {groups - covered}"
    for group in ("generator", "regressor"):  # every option of these groups has its own schema above
        assert {f"{group}/{p.stem}" for p in (ROOT / "conf" / group).glob("*.yaml")} <= set(schemas)
    for where, schema in schemas.items():
        files = [ROOT / "conf" / f"{where}.yaml"] if "/" in where else sorted((ROOT / "conf" / where).glob("*.yaml"))
        defaults = {f.name: f.default for f in dataclasses.fields(schema) if f.default is not dataclasses.MISSING}
        made = [f for f in dataclasses.fields(schema) if f.default_factory is not dataclasses.MISSING]
        defaults |= {f.name: f.default_factory() for f in made}
        for path in files:
            node = yaml.safe_load(path.read_text())
            restated = {k: v for k, v in node.items() if k in defaults and defaults[k] == v and k != "name"}
            assert not restated, f"{path.relative_to(ROOT)} restates the schema: {restated}"
    assert "stages" not in json.dumps(yaml.safe_load((ROOT / "conf" / "config.yaml").read_text()))


LAYERS = [  # docs/architecture.md, from the bottom up: a module imports from its own layer or those below
    {"schema", "errors", "config", "io", "report", "plots", "expr", "datasets", "__init__"},
    {"schedule", "clean", "cards", "features", "forms", "split", "ground_truth", "demo"},
    {"model", "regress", "physics", "train", "generate", "qc", "design", "factory", "selection", "registry"},
    {"stages", "sweep"},
    {"assistant", "answers"},
    {"service", "ui", "webapp", "monitor", "campaign", "init_data", "compare", "predict", "cli"},
]


def _imports(path):
    """The alloy_hydra modules a file imports (top level and inside functions), except under
    `if __name__ == "__main__":`, where a library module starts its CLI."""
    import ast

    tree = ast.parse(path.read_text())
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = []

    def visit(node):
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            mod = base + (node.module.split(".") if node.module else [])
            names = [mod + [a.name] for a in node.names] if not node.module else [mod]
            found.extend(n for n in names if n and n[0] == "alloy_hydra")
        elif isinstance(node, ast.Import):
            found.extend(a.name.split(".") for a in node.names if a.name.startswith("alloy_hydra"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_layers_run_one_way():
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    up = []
    for path in sorted((ROOT / "alloy_hydra").rglob("*.py")):
        parts = path.relative_to(ROOT / "alloy_hydra").with_suffix("").parts
        assert parts[0] in layer, f"{path.relative_to(ROOT)} has no layer: add it to LAYERS and docs/architecture.md"
        for mod in _imports(path):
            target = mod[1] if len(mod) > 1 else "__init__"
            if target in layer and layer[target] > layer[parts[0]]:
                up.append(f"{'/'.join(parts)} imports {'.'.join(mod)}")
    assert not up, "imports against the layers: " + "; ".join(up)


def test_function_defaults_are_the_schemas():
    """A default a function repeats is a second copy of a config fact: these read theirs from the schema."""
    from alloy_hydra import campaign, model, qc, split
    from alloy_hydra.registry import Registry

    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    train = config.TrainConfig()
    fit = model.Domain.fit
    assert (default(fit, "k"), default(fit, "quantile"), default(fit, "range_tol")) == (
        train.domain_k,
        train.domain_quantile,
        train.domain_range_tol,
    )
    opt = config.OptimizerConfig()
    assert (default(design._Search, "pop_size"), default(design._Search, "n_gen")) == (opt.pop_size, opt.n_gen)
    assert default(campaign.Campaign.create, "settings") is None  # None = CampaignConfig()
    assert default(Registry, "path") == config.RegistryConfig().path
    from alloy_hydra import schedule
    from alloy_hydra.train import choose

    assert (default(choose, "rule"), default(choose, "tolerance"), default(choose, "require_physics")) == (
        train.select_rule,
        train.select_tolerance,
        train.require_physics,
    )
    assert default(schedule.features, "ambient_C") == config.CleaningConfig().ambient_C
    for fn, name in ((split.split_groups, "seed"), (qc.acceptance, "composition_sum_tol")):
        assert default(fn, name) is inspect.Parameter.empty  # the caller passes the config's value
    assert set(config.DesignConfig().tolerance) == set(config.DesignConfig().targets)  # keyed by name


def _functions():
    import ast

    for path in sorted((ROOT / "alloy_hydra").rglob("*.py")):
        where = path.relative_to(ROOT / "alloy_hydra").with_suffix("").as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield where, node


def test_no_function_grows_past_sixty_lines():
    """A function that reads as one screen: at most 60 lines, outside the estimators' constructors (one parameter
    per line, sklearn's way)."""
    over = {
        f"{where}.{node.name}": node.end_lineno - node.lineno + 1
        for where, node in _functions()
        if node.name != "__init__" and node.end_lineno - node.lineno + 1 > 60
    }
    assert not over, f"functions over 60 lines (cut them at their seams): {over}"


def test_no_function_takes_a_long_list_of_positional_values():
    """Nine or more positional values are a config dataclass (or keyword-only options) waiting to be passed:
    outside the estimators' constructors (sklearn: every hyper-parameter a keyword with a default), at most 8."""
    many = {}
    for where, node in _functions():
        args = [a.arg for a in [*node.args.posonlyargs, *node.args.args] if a.arg not in ("self", "cls")]
        if len(args) > 8 and not (node.name == "__init__" and where in ("regress", "generate")):
            many[f"{where}.{node.name}"] = len(args)
    assert not many, f"functions with more than 8 positional parameters: {many}"
