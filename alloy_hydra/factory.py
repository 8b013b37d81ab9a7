"""Objects from config nodes: the one place a `_target_` (generator, regressor, optimizer) becomes an object,
and the run's featuriser. Config nodes are the typed dataclasses of alloy_hydra.config."""

from __future__ import annotations

import dataclasses

from .features import Featuriser, default_columns


def params(node) -> dict:
    """A config node (dataclass, DictConfig or dict) as a plain dict."""
    if dataclasses.is_dataclass(node):
        return {f.name: _plain(getattr(node, f.name)) for f in dataclasses.fields(node)}
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)


def _plain(value):
    if dataclasses.is_dataclass(value):
        return params(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def instantiate(node, drop=(), **kwargs):
    """hydra.utils.instantiate on a node's `_target_` (keys in `drop` label the node and are not arguments)."""
    from hydra.utils import instantiate as hydra_instantiate

    p = {k: v for k, v in params(node).items() if k not in drop}
    return hydra_instantiate(p, **kwargs, _convert_="all")


def featuriser(cfg) -> Featuriser:
    """The run's featuriser (unfitted): the data schema's columns minus train.exclude, plus its interactions."""
    numeric, categorical = default_columns(cfg.data)
    return Featuriser([c for c in numeric if c not in cfg.train.exclude], categorical, list(cfg.data.interactions))


def card_featuriser(data) -> Featuriser:
    """Every column of the data schema as it is (no train.exclude, no interactions): QC's utility models judge
    the cards, not the run's modelling choices."""
    return Featuriser(*default_columns(data))


def regressor(cfg, feature_names):
    return instantiate(cfg.regressor, drop=("name",), feature_names=list(feature_names), random_state=cfg.seed)


def generator(cfg, node=None):
    """A generator config (default: the run's `generator`) as an object with the run's seed, and the rows per
    class it makes (target.n_per_class)."""
    return instantiate(cfg.generator if node is None else node, seed=cfg.seed), int(cfg.target.n_per_class)


def optimizer(cfg):
    """The design search of the run's optimizer config, seeded by the run's seed."""
    return instantiate(cfg.optimizer, seed=cfg.seed)
