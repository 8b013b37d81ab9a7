"""Objects from config nodes: the one place a `_target_` (generator, regressor, optimizer) becomes an object,
and the run's featuriser. Config nodes are the typed dataclasses of alloy_hydra.config."""

from __future__ import annotations

from . import forms
from .features import Featuriser, default_columns


def instantiate(node, **kwargs):
    """hydra.utils.instantiate on a config node's `_target_` (a dataclass of alloy_hydra.config or a dict),
    lists and dicts as plain Python."""
    from hydra.utils import instantiate as hydra_instantiate

    return hydra_instantiate(node, **kwargs, _convert_="all")


def featuriser(cfg) -> Featuriser:
    """The run's featuriser (unfitted): the data schema's columns minus train.exclude, plus its interactions and
    the library of metallurgical forms (expanded on the training cards when it is fitted)."""
    numeric, categorical = default_columns(cfg.data)
    return Featuriser(
        [c for c in numeric if c not in cfg.train.exclude],
        categorical,
        list(cfg.data.interactions),
        forms=forms.spec(cfg.data, cfg.data.forms, cfg.train.exclude),
    )


def card_featuriser(data) -> Featuriser:
    """Every column of the data schema as it is (no train.exclude, no interactions): QC's utility models judge
    the cards, not the run's modelling choices."""
    return Featuriser(*default_columns(data))


def regressor(cfg, feature_names):
    return instantiate(cfg.regressor, feature_names=list(feature_names), random_state=cfg.seed)


def generator(cfg, node=None):
    """A generator config (default: the run's `generator`) as an object with the run's seed."""
    return instantiate(cfg.generator if node is None else node, seed=cfg.seed)


def optimizer(cfg):
    """The design search of the run's optimizer config, seeded by the run's seed."""
    return instantiate(cfg.optimizer, seed=cfg.seed)
