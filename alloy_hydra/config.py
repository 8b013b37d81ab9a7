"""Structured config schemas, registered in Hydra's ConfigStore so a typo'd key fails before any work.

The YAML files in conf/ pick these schemas as their base (`defaults: [base_<group>, _self_]`).
Stage code never needs Hydra: run.py converts the composed config once (`typed`) and passes the dataclasses in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from .schema import TARGETS

# the built stages in run order, each alloy_hydra/stages/<name>.py (a run's `stages` is a subsequence)
STAGES = ("clean", "split", "generate", "qc", "train", "audit", "design")


@dataclass
class NumericSpec:
    column: str = MISSING
    unit: str = ""  # unit of bare numbers in the file; values may carry their own (e.g. "23.6 in")
    kind: str = "plain"  # plain | length | percent | grain


@dataclass
class ScheduleSpec:
    """A thermal treatment: either a schedule string column, or a temperature column (+ optional time column)."""

    column: str | None = None
    temp_column: str | None = None
    temp_unit: str = "C"
    time_column: str | None = None
    time_unit: str = "s"
    none_at_or_below_C: float = 25.0  # a temperature at or below this means "not done" (uq: 25 = none)
    threshold_C: float | None = None  # adds <name>_time_at_ge_<T>C_s
    type_column: str | None = None  # recryst_type as written on the card (batch/flash/direct/other/none)
    kind: str = "generic"  # homog | recryst | generic: which adequacy rules apply


@dataclass
class FormsConfig:
    """The library of metallurgical forms offered to every data config (alloy_hydra/forms.py; docs/methods.md):
    candidate inputs the symbolic search chooses among by grouped CV. `data.interactions` adds to it."""

    enabled: bool = True
    hall_petch: bool = True  # d^-1/2 of every grain-size input
    strain_exponents: list[float] = field(default_factory=lambda: [0.5, 0.25])  # Taylor sqrt(eps), Hollomon eps^n
    solute_exponents: list[float] = field(default_factory=lambda: [0.667])  # Labusch c^(2/3); c is always an input
    min_share: float = 0.05  # a solute enters when this share of the training cards holds >= min_wt of it
    min_wt: float = 0.01
    product_solutes: int = 3  # the most varied solutes times the Hall-Petch, sqrt(strain) and ageing terms
    hollomon_jaffe_C: float = 20.0  # T_K (C + log10 t_h): C ~ 20 for Al alloys
    activation_kJ_mol: float = 130.0  # Arrhenius time of each schedule: solute diffusion in Al, ~120-145 kJ/mol


@dataclass
class DataConfig:
    name: str = MISSING
    path: str | None = None  # null = the demo cards shipped in the package, or the cached copy of `dataset`
    dataset: str | None = None  # a public dataset (alloy_hydra.datasets) whose cached copy is read when path is null
    delimiter: str = ","
    id_columns: list[str] = field(default_factory=list)
    group_columns: list[str] = field(default_factory=list)  # empty = group by identical composition
    group_by_composition_if: dict[str, str] = field(default_factory=dict)  # {column: value} -> composition group
    composition_columns: dict[str, str] = field(default_factory=dict)  # element -> raw column
    composition_unit: str = "wt%"  # wt% | fraction
    balance_element: str = "Al"
    balance_column: str | None = None  # raw column with the balance element, kept as *_RAW only
    categoricals: dict[str, str] = field(default_factory=dict)  # canonical name -> raw column
    numeric: dict[str, NumericSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)  # YS/UTS/... -> raw column
    carry_columns: list[str] = field(default_factory=list)  # kept verbatim, never features
    drop_exact_duplicates: bool = True
    detection_limit: str = "half"  # "<0.01" -> zero | half | limit
    ground_truth: bool = False  # properties come from alloy_hydra.ground_truth (demo only)
    coarse_group_column: str | None = None  # a low-cardinality key SDV generators may condition on
    interactions: list[str] = field(default_factory=list)  # extra model inputs, formulas over card columns
    forms: FormsConfig = field(default_factory=FormsConfig)  # the library of metallurgical forms (off: enabled=false)


@dataclass
class TargetConfig:
    name: str = MISSING
    unit: str = MISSING
    clip: list[float] = field(default_factory=lambda: [0.0, 1e9])  # physical range; values outside are clipped
    n_per_class: int = 60  # synthetic rows per class (group) the generator makes for this target ...
    # ... at most this many per real train card of the class (null = no cap): synthetic rows sized to the real data,
    # so a file of a few hundred cards never trains on tens of thousands of made-up rows
    max_synthetic_per_real: float | None = 2.0
    # feature -> expected sign of d target/d feature, or {sign: s, where: {column: [values]}} (alloy_hydra/physics.py)
    physics: dict[str, Any] = field(default_factory=dict)
    design_value: float | None = None  # the design stage's default target for a single-target run


@dataclass
class ChemWindowConfig:
    name: str = MISSING
    max: dict[str, float] = field(default_factory=dict)  # wt%
    min: dict[str, float] = field(default_factory=dict)
    unlisted_max: float | None = None  # bound for elements the window does not list


@dataclass
class ThresholdsConfig:
    name: str = MISSING  # the defaults are the strict set (conf/thresholds/strict.yaml)
    # synthetic compositions must sum to 100 ± cleaning.composition_sum_tol, the rule the cards obey
    negatives_max: int = 0
    window_violations_max: int = 0
    target_in_range_min_pct: float = 95.0
    ks_p_min: float = 0.01
    balance_ratio_max: float = 2.5
    corr_mae_max: float = 0.12
    near_duplicates_max_pct: float = 3.0
    clip_rate_max_pct: float = 5.0


@dataclass
class AdequacyRule:
    min_temp_C: float = MISSING  # plain rule: time at or above this temperature ...
    min_time_s: float = MISSING  # ... must reach this
    # kinetic rule (when activation_kJ_mol is set): every step counts as Arrhenius-equivalent time at min_temp_C,
    # t_eq = sum t * exp(-Q/R (1/T - 1/T_min)) * eps^strain_exponent, eps = von Mises strain of the `strain_from`
    # rolling reduction (%); adequate when t_eq >= min_time_s
    activation_kJ_mol: float | None = None
    strain_from: str | None = None
    strain_exponent: float = 0.0


def recryst_rule() -> AdequacyRule:
    """Recrystallisation: Sellars-type kinetics, t_X ∝ eps^-2 exp(Q/RT) with Q = 200 kJ/mol (Al-Mg): 1 h at
    340 °C for a strain of 1 (58 % cold reduction), 4 h for 29 %; a flash anneal of 10 s at 500 °C is worth 9 h.
    The default rule of every anneal type (batch, flash, direct)."""
    return AdequacyRule(340.0, 3600.0, 200.0, "cold_reduction_pct", 2.0)


@dataclass
class CleaningConfig:
    composition_sum_tol: float = 0.05  # Σ must end within 100 ± tol (Al balance makes it exact)
    ambient_C: float = 25.0  # temperature features of "no treatment"
    # adequacy rules (documented in README): time at or above min_temp_C must reach min_time_s
    homog: AdequacyRule = field(default_factory=lambda: AdequacyRule(520.0, 7200.0))
    recryst_batch: AdequacyRule = field(default_factory=recryst_rule)
    recryst_flash: AdequacyRule = field(default_factory=recryst_rule)
    recryst_direct: AdequacyRule = field(default_factory=recryst_rule)
    flash_max_s: float = 600.0  # an inferred recryst_type: total time <= this is flash
    batch_min_s: float = 1800.0  # ... >= this is batch; between is "other"
    window_warn_fraction: float = 0.5  # warn when the chem window rejects more than this share of rows
    # a given balance (Al) whose composition sums off 100 by more than 0.05 wt%: fix (the balance recomputed as
    # 100 − the other elements; each row listed in the cleaning report and the log) | reject (the row, with why)
    balance_mismatch: str = "fix"


@dataclass
class GeneratorConfig:
    _target_: str = MISSING
    name: str = MISSING


@dataclass
class JitterConfig(GeneratorConfig):
    k: float = 0.5  # noise sd = k · MAD of each numeric column
    jitter_target: bool = True


@dataclass
class SDVConfig(GeneratorConfig):
    kind: str = MISSING  # ctgan | gaussiancopula
    epochs: int = 300
    batch_size: int = 256
    pac: int = 2
    embedding_dim: int = 128
    generator_dim: list[int] = field(default_factory=lambda: [256, 256])
    discriminator_dim: list[int] = field(default_factory=lambda: [256, 256])
    default_distribution: str = "beta"  # Gaussian copula marginals (truncnorm fits 10x faster, TSTR far worse)
    pool_factor: int = 2  # rows sampled per row needed, before nearest-class assignment
    condition_on: bool = True  # condition on data.coarse_group_column when the dataset has one
    threads: int = 2


@dataclass
class AutoConfig(GeneratorConfig):
    """Synthetic rows only where they help (stages/generate.py choose_augmentation): decided on an inner split of the
    real train groups, never the holdout."""

    candidate: Any = MISSING  # a generator config (composed from its own file)
    inner_holdout: float = 0.25  # share of train groups scored
    min_gain: float = 0.02  # the rows must lower the inner-validation MAE by this share


@dataclass
class BlendConfig(GeneratorConfig):
    parts: dict[str, Any] = field(default_factory=dict)  # name -> a generator config (composed from its file)
    shares: dict[str, float] = field(default_factory=dict)  # name -> share of each class's rows (sums to 1)
    threads: int = 2


@dataclass
class RegressorConfig:
    _target_: str = MISSING
    name: str = MISSING


@dataclass
class OperonConfig(RegressorConfig):
    generations: int = 200  # bounds the work: the same config gives the same formula on any load
    population_size: int = 500
    max_length: int = 30
    max_depth: int = 10
    allowed_symbols: str = "add,sub,mul,div,constant,variable,sqrt,log,exp,square"
    optimizer_iterations: int = 10  # constant fitting (off at 0)
    # optional wall-clock safety cap (seconds) per fit; when it fires the formula depends on machine load, and
    # metrics.json says so (sr_time_cap_fired = number of fits it stopped)
    max_time: int | None = None
    max_evaluations: int | None = None  # optional cap on fitness evaluations (null = generations decide)
    n_threads: int = 2
    hinge_terms: int = 30  # the sparse hinge-basis path (regressor=hinge) joins the front; 0 = off


@dataclass
class HingeConfig(RegressorConfig):
    max_terms: int = 30  # longest formula on the path (terms)
    knots: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 0.9])  # training quantiles
    min_distinct: int = 6  # inputs with fewer distinct values enter as they are (flags, levels)
    # omp / ols (greedy) and lars (relaxed lasso): each adds a path of its own to the front
    paths: list[str] = field(default_factory=lambda: ["omp", "ols", "lars"])
    tries: int = 10  # best-correlated candidates tried per step before the path stops (physics)


@dataclass
class PySRConfig(RegressorConfig):
    niterations: int = 100
    populations: int = 30
    population_size: int = 100
    parsimony: float = 0.002
    binary_operators: list[str] = field(default_factory=lambda: ["+", "*", "-", "/"])
    unary_operators: list[str] = field(default_factory=lambda: ["square", "cube", "sqrt", "log", "exp"])
    constraints: dict[str, Any] = field(default_factory=lambda: {"pow": [-1, 3], "exp": 3})
    loss: str = "loss(prediction, target) = abs(prediction - target)"
    procs: int = 4
    multithreading: bool = True
    max_time: float | None = None


@dataclass
class RidgeConfig(RegressorConfig):
    alphas: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0, 100.0])


@dataclass
class GBMConfig(RegressorConfig):
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31


@dataclass
class TrainConfig:
    data: str = "synthetic+real"  # synthetic+real | synthetic | real (generator=none: real)
    cv_folds: int = 5  # GroupKFold; synthetic rows grouped with their source_group
    max_rows: int = 4000  # rows per fit: every real card + a per-group share of synthetic rows
    ensemble: int = 20  # bootstrap-over-groups members for the uncertainty
    select_rule: str = "parsimony"  # parsimony | gain | se | min_cv
    # parsimony: CV MAE <= (1+tol) x best; gain: <= best + tol x (const-best); se: <= best + tol paired group SEs
    select_tolerance: float = 0.02
    max_complexity: int | None = None  # only front members of at most this many nodes are chosen (null = any size)
    select_cv: str = "nested"  # nested: the engine's own search per fold | refit: structure fixed, constants refit
    # formulas bounded to the training target range +- this x its width (null = off): a guard against run-away
    # expressions that still lets a formula predict above the strongest training card (0 caps it there)
    clip_margin: float | None = 1.0
    require_physics: bool = True
    physics_min_fraction: float = 0.9  # share of audit points with the expected sign
    domain_k: int = 5
    domain_quantile: float = 0.95  # out of domain beyond this quantile of training distances
    agreement_sigma: float = 2.0  # ... or where the formula and gbm (same rows) differ by > this x CV RMSE; 0 = off
    monotone: bool = True  # the gbm reference (domain, sigma) keeps the signs the physics audit states everywhere
    domain_range_tol: float = 0.1  # ... or where an input leaves the training range widened by this x its width
    sigma_model: bool = True  # sigma from |formula - gbm| and the distance, fitted on real out-of-fold errors
    exclude: list[str] = field(default_factory=list)  # card columns never used as features


@dataclass
class OptimizerConfig:
    _target_: str = MISSING  # alloy_hydra.design.NSGA2Search | RandomSearch
    name: str = MISSING  # nsga2 | random (same budget: pop_size x n_gen evaluations)
    pop_size: int = 100
    n_gen: int = 200


@dataclass
class DesignWeights:
    cost: float = 0.5  # per unit of cost index above pure Al
    simplicity: float = 0.1  # per 10 additions above 0.1 wt%
    confidence: float = 0.3  # per unit of mean sigma / tolerance


@dataclass
class DesignConfig:
    # null = not designed for; all null = the run's own target at target.design_value
    targets: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(TARGETS))
    tolerance: dict[str, float] = field(
        default_factory=lambda: {"YS": 10.0, "UTS": 15.0, "FractureEL": 2.0, "UniformEL": 2.0, "YPE": 0.3}
    )
    min: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(TARGETS))  # design.min.FractureEL=10
    models: Any = None  # null = this run's model; else run dir(s) or sweep dir(s)
    combine: str = "committee"  # several runs of a target's chosen configuration (seeds): committee | best
    casting: str | None = None  # fix a categorical, e.g. DC
    fixed: dict[str, str] = field(default_factory=dict)  # fix other categoricals (recryst_type: batch)
    bounds: dict[str, list[float]] = field(default_factory=dict)  # override a variable's range
    max_cost: float | None = None
    max_additions: int | None = None
    adequate_homog: bool = True  # cleaning's adequacy rule must hold
    adequate_recryst: bool = True  # ... for anneals meant to recrystallise (batch / flash / direct)
    domain: str = "exclude"  # exclude | penalise | ignore (out-of-domain candidates)
    # The design space is what the cards support: an element is a design variable only where at least min_share
    # of the (family's) cards hold >= min_wt wt% of it; others stay at the cards' typical (median) value unless
    # listed in `allow`. Categorical levels need min_share of the cards too. Element bounds: these quantiles of
    # the (family's) cards, inside the chem window (design.bounds overrides both).
    support: dict[str, float] = field(default_factory=lambda: {"min_wt": 0.01, "min_share": 0.05})
    allow: list[str] = field(default_factory=list)
    quantiles: list[float] = field(default_factory=lambda: [0.01, 0.99])
    family: str | None = None  # a key of `families`: design within that alloy family's cards
    # Aluminum Association series by their principal alloying elements (wt%); a card belongs to a family when
    # every listed limit holds. Process ranges and supported elements then come from the family's own cards.
    families: dict[str, Any] = field(
        default_factory=lambda: {
            "AA1xxx": {"max": {"Cu": 0.5, "Mn": 0.3, "Mg": 0.3, "Si": 1.0, "Zn": 0.3, "Fe": 1.0}},
            "AA2xxx": {"min": {"Cu": 1.5}, "max": {"Zn": 1.0, "Li": 0.5}},
            "AA3xxx": {"min": {"Mn": 0.3}, "max": {"Cu": 0.5, "Mg": 1.3, "Si": 0.8, "Zn": 0.5}},
            "AA5xxx": {"min": {"Mg": 0.5}, "max": {"Cu": 0.5, "Zn": 1.0, "Si": 0.8}},
            "AA6xxx": {"min": {"Mg": 0.3, "Si": 0.2}, "max": {"Cu": 1.2, "Zn": 1.0, "Mg": 1.6, "Si": 1.9}},
            "AA7xxx": {"min": {"Zn": 2.5}, "max": {"Li": 0.5}},
            "AA8xxx": {"min": {"Li": 0.5}},
        }
    )
    # raw-material price / price of Al (rough, conservative for the rare ones). An element the design may add
    # without a price here is a config error: a missing price would otherwise cost what aluminium costs
    cost_weights: dict[str, float] = field(
        default_factory=lambda: {
            "Al": 1.0,
            "Mg": 1.4,
            "Mn": 1.0,
            "Cr": 4.0,
            "Cu": 3.5,
            "Zn": 1.2,
            "Zr": 12.0,
            "Sc": 1500.0,
            "Ti": 4.0,
            "Ni": 6.0,
            "Fe": 0.2,
            "Si": 1.0,
            "Li": 40.0,
            "Ag": 300.0,
            "V": 15.0,
            "Other": 1.0,
            "B": 20.0,
            "Be": 400.0,
            "Bi": 5.0,
            "Pb": 1.0,
            "Sn": 12.0,
            "Ga": 150.0,
            "Cd": 2.0,
            "Co": 15.0,
            "Er": 30.0,
            "Eu": 400.0,
            "Ce": 3.0,
            "La": 3.0,
            "Sr": 5.0,
            "Ca": 2.0,
            "Hf": 600.0,
            "Y": 20.0,
            "Nb": 20.0,
            "Mo": 20.0,
        }
    )
    weights: DesignWeights = field(default_factory=DesignWeights)
    top: int = 20
    hit_top: int = 10  # closed loop on demo: top-N scored by the ground truth
    # below this chance that a recipe lands within tolerance of every target, no recipe "hits": the run warns and
    # says why, the service shows the closest recipes as such instead of a ranking
    min_p_hit: float = 0.05
    stratify_by: list[str] = field(default_factory=lambda: ["casting"])
    # recorded numbers that follow from the recipe (not set by the caster): filled from the 5 most similar cards
    outcomes: list[str] = field(default_factory=lambda: ["grain_size_um"])


@dataclass
class SplitConfig:
    # share of groups held out (never seen by generator or regressor); 0 = every card trains and the model is
    # validated by grouped CV only (the campaign: it learns from every experiment it paid for)
    holdout_fraction: float = 0.2
    # the holdout's own seed, apart from the run's `seed`: runs that differ only in their seed (a committee) hold
    # out the same groups, so the committee is scored on groups none of its members trained on
    seed: int = 0


@dataclass
class QCConfig:
    near_dup_fraction: float = 0.25  # near-duplicate: DCR < this × median real-to-real NN distance
    on_fail: str = "fallback_real"  # failed QC: fallback_real (train on real rows) | stop | continue
    plots: bool = True


@dataclass
class CampaignConfig:
    # python -m alloy_hydra.campaign init: how a batch is split and spread (alloy_hydra/campaign.py)
    explore: float = 0.4  # share of each batch that explores where the models are least sure
    diversity: float = 1.0  # recipes of one batch at least this far apart (RMS, in spreads of the candidates)
    # run.py overrides for every round's training and design: fast, readable models (hinge), real cards only
    overrides: list[str] = field(
        default_factory=lambda: ["regressor=hinge", "generator=none", "qc.plots=false", "summary=false"]
    )
    seed: int = 0  # the seed of every round's runs
    registry: str | None = None  # publish every round's models to this registry (a RegistryConfig.path)


@dataclass
class RegistryConfig:
    # the model registry (python -m alloy_hydra.registry; design.models=registry:champion); relative to the
    # directory the command runs in
    path: str = "models"


@dataclass
class MonitorConfig:
    # python -m alloy_hydra.monitor: when does a model need retraining, and when has a feature drifted
    max_mae_increase: float = 0.15  # the action plan's rule: MAE on new cards > recorded MAE x 1.15 ...
    min_cards: int = 10  # ... on at least this many labelled cards ...
    confidence: float = 0.9  # ... with this bootstrap interval (over alloy groups) above the recorded MAE
    bootstrap: int = 1000
    p_value: float = 0.01  # a feature drifts when its test rejects at this level and the shift is large:
    max_shift_sd: float = 0.5  # numbers: Wasserstein distance / training sd
    max_js: float = 0.2  # categories: Jensen-Shannon distance of the level shares (base 2)
    seed: int = 0


@dataclass
class PathsConfig:
    # where a run reads what it does not ship with (conf/paths; paths.data_dir=/mnt/lab/datasets)
    name: str = "default"  # a run dir written before conf/paths had none
    data_dir: str | None = None  # the public datasets' cache; None: $ALLOY_HYDRA_DATA, else the user cache


@dataclass
class Config:
    data: DataConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    target: TargetConfig = MISSING
    chem_window: ChemWindowConfig = MISSING
    thresholds: ThresholdsConfig = MISSING
    generator: Any = MISSING
    regressor: Any = MISSING
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    qc: QCConfig = field(default_factory=QCConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optimizer: OptimizerConfig = MISSING
    design: DesignConfig = field(default_factory=DesignConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    seed: int = 42
    summary: bool = True  # print the rich summary
    resume: bool = False  # in a sweep: skip jobs whose run dir is already complete
    threads: int | None = None  # per job; null = cores (single run) or cores // hydra.launcher.n_jobs


def register() -> None:
    """Register schemas (idempotent). Called by run.py and by tests that compose configs."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="data", name="base_data", node=DataConfig)
    cs.store(group="paths", name="base_paths", node=PathsConfig)
    cs.store(group="target", name="base_target", node=TargetConfig)
    cs.store(group="chem_window", name="base_chem_window", node=ChemWindowConfig)
    cs.store(group="thresholds", name="base_thresholds", node=ThresholdsConfig)
    cs.store(group="generator", name="base_jitter", node=JitterConfig)
    cs.store(group="generator", name="base_sdv", node=SDVConfig)
    cs.store(group="generator", name="base_none", node=GeneratorConfig)
    cs.store(group="generator", name="base_blend", node=BlendConfig)
    cs.store(group="generator", name="base_auto", node=AutoConfig)
    cs.store(group="optimizer", name="base_optimizer", node=OptimizerConfig)
    for name, node in (
        ("operon", OperonConfig),
        ("pysr", PySRConfig),
        ("ridge", RidgeConfig),
        ("gbm", GBMConfig),
        ("hinge", HingeConfig),
    ):
        cs.store(group="regressor", name=f"base_{name}", node=node)


def data_file(data, data_dir: str | None = None) -> Path | None:
    """The cards file a data config names (None = the embedded demo cards); a dataset without data.path or a
    file that does not exist is a ConfigError. `data_dir`: paths.data_dir, where datasets are cached."""
    from .errors import ConfigError

    if data.path in (None, "", "???"):
        if data.dataset:
            from . import datasets

            return datasets.path(data.dataset, data_dir)
        if data.name != "demo":
            raise ConfigError(f"data={data.name} needs data.path=<csv file> (see the README for where to get it)")
        return None
    path = Path(data.path).expanduser().resolve()  # relative to where the user ran the command
    if not path.is_file():
        raise ConfigError(f"data.path={data.path}: file not found ({path})")
    return path


def check_data(cfg) -> Path | None:
    """The config errors found before any work (run.py calls this before it imports the stages): data_file's,
    and a target the dataset lacks."""
    from .errors import ConfigError

    unknown = unknown_keys(cfg)
    if unknown:
        raise ConfigError(
            "unknown config key" + ("s " if len(unknown) > 1 else " ") + "; ".join(unknown) + " (a '+' adds a key only "
            "where the schema has a free-form dict, e.g. +design.fixed.recryst_type=batch)"
        )
    if cfg.target.name not in cfg.data.targets:
        raise ConfigError(
            f"target={cfg.target.name}: dataset {cfg.data.name!r} has no such property "
            f"(it has {list(cfg.data.targets)})"
        )
    return data_file(cfg.data, cfg.paths.data_dir)


def check_group_options(argv, conf_dir=None) -> str | None:
    """A command line's `group=option` (or a sweep's `group=a,b`) that names no config file of that group, as
    the error to print (the group's own options only: the schemas registered as base_* are not choices), else
    None. run.py calls this before Hydra, which would list the schemas too."""
    if any(a.startswith(("hydra.searchpath", "--config-dir", "-cd", "--config-path", "-cp")) for a in argv):
        return None  # options may come from another config dir: Hydra decides
    conf = Path(conf_dir) if conf_dir else Path(__file__).resolve().parents[1] / "conf"
    groups = {p.name: sorted(f.stem for f in p.glob("*.yaml")) for p in conf.iterdir() if p.is_dir()}
    groups.pop("hydra", None)
    for arg in argv:
        if "=" not in arg or arg.startswith(("-", "~", "+", "hydra")):
            continue
        key, value = arg.split("=", 1)
        if key not in groups or value.startswith(("choice(", "range(", "glob(", "[")):
            continue
        for option in value.split(","):
            if option.strip() and option.strip() not in groups[key]:
                return f"{key}={option}: no such option; {key} is one of {', '.join(groups[key])}"
    return None


def unknown_keys(cfg, path: str = "") -> list[str]:
    """Keys of the composed config that no schema has (a typo added with `+`, which Hydra accepts), each with the
    nearest known key: every node typed by a dataclass of this module may hold only that dataclass's fields."""
    import dataclasses
    import difflib

    from omegaconf import DictConfig, OmegaConf

    out = []
    kind = OmegaConf.get_type(cfg)
    fields = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else None
    for key in cfg.keys() if isinstance(cfg, DictConfig) else []:
        name = f"{path}{key}"
        if fields is not None and key not in fields and not str(key).startswith("_"):
            near = difflib.get_close_matches(str(key), sorted(fields), n=1)
            out.append(f"{name}" + (f" (did you mean {path}{near[0]}?)" if near else ""))
            continue
        node = cfg._get_node(key)
        if isinstance(node, DictConfig):
            out += unknown_keys(node, f"{name}.")
    return out


def check_options(cfg) -> None:
    """Config values with a fixed set of choices, checked before any work."""
    from .errors import ConfigError

    choices = {
        "qc.on_fail": (cfg.qc.on_fail, ("fallback_real", "stop", "continue")),
        "design.domain": (cfg.design.domain, ("exclude", "penalise", "ignore")),
        "design.combine": (cfg.design.combine, ("committee", "best")),
        "train.data": (cfg.train.data, ("real", "synthetic", "synthetic+real")),
        "cleaning.balance_mismatch": (cfg.cleaning.balance_mismatch, ("fix", "reject")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key} must be {', '.join(allowed[:-1])} or {allowed[-1]}, not {value!r}")
    if cfg.generator.name == "auto" and not 0 < cfg.generator.inner_holdout < 1:
        raise ConfigError(f"generator.inner_holdout must be between 0 and 1, not {cfg.generator.inner_holdout}")
    if not 0 <= cfg.split.holdout_fraction < 1:
        raise ConfigError(f"split.holdout_fraction must be in [0, 1), not {cfg.split.holdout_fraction}")
    q = list(cfg.design.quantiles)
    if len(q) != 2 or not 0 <= q[0] <= q[1] <= 1:
        raise ConfigError(f"design.quantiles must be [low, high] with 0 <= low <= high <= 1, not {q}")
    if not 0 <= cfg.design.support.get("min_share", 0) <= 1:
        raise ConfigError(f"design.support.min_share must be a share in [0, 1], not {cfg.design.support['min_share']}")


def typed(cfg) -> Config:
    """A composed DictConfig as the typed dataclasses (done once, at the edge: run.py, compose, load_run_config);
    stage code reads plain attributes from here on."""
    from omegaconf import OmegaConf

    return cfg if isinstance(cfg, Config) else OmegaConf.to_object(cfg)


def compose(overrides=(), config_dir=None, as_dict: bool = False, hydra: bool = False):
    """The app's config exactly as run.py composes it (schemas registered, conf/ as the primary path), typed
    unless as_dict (hydra=True: with the `hydra` node, as a DictConfig). For tests, benchmarks and notebooks."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register()
    conf = Path(config_dir) if config_dir else Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)
    return cfg if as_dict or hydra else typed(cfg)


def _known(schema, node: dict) -> dict:
    """node without the keys schema does not have (a run dir written by an older version may hold them)."""
    names = {f.name for f in dataclasses.fields(schema)}
    return {k: v for k, v in node.items() if k in names}


def load_run_config(run_dir) -> Config:
    """A run dir's .hydra/config.yaml as the typed config its stages saw (keys this version no longer has are
    dropped; generator and regressor stay plain dicts)."""
    from .errors import ConfigError

    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a run dir (no .hydra/config.yaml)")
    return load_config_file(path)


def load_config_file(path) -> Config:
    """A saved run config (a run dir's .hydra/config.yaml, a registry version's config.yaml), typed."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    nodes = {name: _known(schema, raw[name]) for name, schema in _SCHEMAS.items() if name in raw}
    rest = {k: v for k, v in _known(Config, raw).items() if k not in nodes}
    merged = OmegaConf.merge(OmegaConf.structured(Config), rest, nodes)
    return OmegaConf.to_object(merged)


_SCHEMAS = {
    "data": DataConfig,
    "paths": PathsConfig,
    "target": TargetConfig,
    "chem_window": ChemWindowConfig,
    "thresholds": ThresholdsConfig,
    "cleaning": CleaningConfig,
    "split": SplitConfig,
    "qc": QCConfig,
    "train": TrainConfig,
    "optimizer": OptimizerConfig,
    "design": DesignConfig,
    "registry": RegistryConfig,
    "monitor": MonitorConfig,
}
