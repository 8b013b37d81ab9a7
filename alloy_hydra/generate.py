"""Synthetic recipe rows: jitter, SDV (CTGAN, Gaussian copula), a blend of them, none. SDV-style `fit` / `sample`.

Every generator is fitted on the real *train* groups only and returns recipe-table rows (alloy_hydra.cards)
with `source_group`, the real class each row was generated for. `postprocess` then applies the same
chemistry window, Al balance, range clipping and physics gates to every generator's rows, counting each fix.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.neighbors import NearestNeighbors

from .cards import RecipeSpace, Schema
from .config import BlendConfig, JitterConfig, SDVConfig

log = logging.getLogger(__name__)
_SDV = SDVConfig()  # list-valued defaults, read once from the schema
SOURCE = "source_group"
PART = "source_generator"  # which generator made a row (a blend's rows carry their part's name)


def mad(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(np.abs(x - np.median(x)))) if len(x) else 0.0


def _class_index(groups: pd.Series) -> dict:
    return {g: np.flatnonzero(groups.to_numpy() == g) for g in sorted(groups.unique())}


def quota(groups: pd.Series, n_per_class: int, per_real: float | None) -> pd.Series:
    """Rows asked of each class (train group): n_per_class, at most per_real x its real cards (rounded up, so
    every class gets at least one). Sized to the real data: a class of one card is not drowned in 60 copies of it,
    and a few hundred cards never become tens of thousands of rows."""
    real = groups.value_counts().sort_index()
    if per_real is None:
        return pd.Series(int(n_per_class), index=real.index)
    return np.minimum(int(n_per_class), np.ceil(float(per_real) * real).astype(int).clip(lower=1))


def _asked(n_per_class, classes) -> dict:
    """A generator's `sample` takes one count for every class or a count per class (a `quota`)."""
    if isinstance(n_per_class, (int, np.integer)):
        return dict.fromkeys(classes, int(n_per_class))
    return {g: int(n_per_class.get(g, 0)) for g in classes}


class Jitter(BaseEstimator):
    """Per class: n_per_class rows drawn with replacement, each numeric column + N(0, k·MAD), clipped to the
    observed range. Schedule steps are jittered within their stratum (same step count and recryst type), so
    a jittered schedule stays a schedule of its kind; categoricals are kept."""

    def __init__(self, name="jitter", k=JitterConfig.k, jitter_target=JitterConfig.jitter_target, seed=0):
        self.name = name
        self.k = k
        self.jitter_target = jitter_target
        self.seed = seed

    def fit(self, table: pd.DataFrame, groups: pd.Series, schema: Schema, coarse=None):
        self.table_ = table.reset_index(drop=True)
        self.groups_ = groups.reset_index(drop=True)
        self.schema_ = schema
        cols = [
            c for c in schema.continuous if c not in schema.strata and (self.jitter_target or c not in schema.targets)
        ]
        self.sd_ = pd.Series({c: self.k * mad(self.table_[c].to_numpy(float)) for c in cols})
        self.lo_ = self.table_[schema.continuous].min()
        self.hi_ = self.table_[schema.continuous].max()
        self.strata_sd_ = {}
        self.strata_lo_ = {}
        self.strata_hi_ = {}
        for col, key in schema.strata.items():
            g = self.table_.groupby(key, dropna=False)[col]
            self.strata_sd_[col] = g.transform(lambda s: self.k * mad(s.to_numpy(float)))
            self.strata_lo_[col], self.strata_hi_[col] = g.transform("min"), g.transform("max")
        return self

    def sample(self, n_per_class) -> pd.DataFrame:
        rng = np.random.default_rng(self.seed)
        classes = _class_index(self.groups_)
        asked = _asked(n_per_class, classes)
        idx = np.concatenate([rng.choice(ix, size=asked[g], replace=True) for g, ix in classes.items()] + [[]])
        idx = idx.astype(int)
        out = self.table_.iloc[idx].reset_index(drop=True)
        for col, sd in self.sd_.items():
            if sd > 0:
                out[col] = out[col].to_numpy(float) + rng.normal(0.0, sd, len(out))
        for col in self.strata_sd_:
            sd = self.strata_sd_[col].to_numpy(float)[idx]
            noisy = out[col].to_numpy(float) + rng.normal(0.0, 1.0, len(out)) * np.nan_to_num(sd)
            # a step stays inside the range its stratum (e.g. flash anneals) was observed in
            out[col] = np.clip(
                noisy, self.strata_lo_[col].to_numpy(float)[idx], self.strata_hi_[col].to_numpy(float)[idx]
            )
        out[SOURCE] = self.groups_.to_numpy()[idx]
        return out


class NoGenerator(BaseEstimator):
    """`generator=none`: no synthetic rows; training uses the real train groups only."""

    def __init__(self, name="none", seed=0):
        self.name = name
        self.seed = seed

    def fit(self, table, groups, schema, coarse=None):
        self.columns_ = list(table.columns)
        return self

    def sample(self, n_per_class) -> pd.DataFrame:
        return pd.DataFrame(columns=self.columns_ + [SOURCE])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


@contextlib.contextmanager
def _ctgan_epochs(advance):
    """CTGAN reports its epochs only through a tqdm bar of its own; while it fits, that bar is replaced by one that
    calls advance() after each epoch, so the run's progress bar shows epochs done and the time left."""
    from ctgan.synthesizers import ctgan as ctgan_module

    class Epochs:
        def __init__(self, iterable, **_):
            self.iterable = iterable

        def __iter__(self):
            for epoch in self.iterable:
                yield epoch
                advance()

        def set_description(self, *_args, **_kwargs):
            pass

    real = ctgan_module.tqdm
    ctgan_module.tqdm = Epochs
    try:
        yield
    finally:
        ctgan_module.tqdm = real


class SDVGenerator(BaseEstimator):
    """CTGAN or Gaussian copula through SDV, on the recipe table without any id column.

    Class structure without one-hot encoding hundreds of ids: the synthesizer is optionally conditioned on a
    low-cardinality key (`condition_on`, e.g. the demo's 12 study files), a pool of pool_factor × the needed
    rows is sampled per key value, and each sampled row is assigned to its nearest real train class (same key,
    standardised recipe space). Each class then takes up to n_per_class of its rows."""

    def __init__(
        self,
        name="ctgan",
        kind="ctgan",
        epochs=SDVConfig.epochs,
        batch_size=SDVConfig.batch_size,
        pac=SDVConfig.pac,
        embedding_dim=SDVConfig.embedding_dim,
        generator_dim=tuple(_SDV.generator_dim),
        discriminator_dim=tuple(_SDV.discriminator_dim),
        default_distribution=SDVConfig.default_distribution,
        pool_factor=SDVConfig.pool_factor,
        condition_on=SDVConfig.condition_on,
        threads=SDVConfig.threads,
        seed=0,
    ):
        self.name = name
        self.kind = kind
        self.epochs = epochs
        self.batch_size = batch_size
        self.pac = pac
        self.embedding_dim = embedding_dim
        self.generator_dim = generator_dim
        self.discriminator_dim = discriminator_dim
        self.default_distribution = default_distribution
        self.pool_factor = pool_factor
        self.condition_on = condition_on
        self.threads = threads
        self.seed = seed

    def _synthesizer(self, metadata):
        from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer

        if self.kind == "gaussiancopula":
            return GaussianCopulaSynthesizer(metadata, default_distribution=self.default_distribution)
        if self.kind == "ctgan":
            return CTGANSynthesizer(
                metadata,
                epochs=self.epochs,
                batch_size=self.batch_size,
                pac=self.pac,
                embedding_dim=self.embedding_dim,
                generator_dim=tuple(self.generator_dim),
                discriminator_dim=tuple(self.discriminator_dim),
                enable_gpu=False,
            )
        raise ValueError(f"unknown SDV kind {self.kind!r}")

    def fit(self, table: pd.DataFrame, groups: pd.Series, schema: Schema, coarse: pd.Series | None = None):
        import torch
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from sdv.metadata import Metadata

        torch.set_num_threads(max(1, int(self.threads)))
        for noisy in ("sdv", "SingleTableSynthesizer", "copulas", "rdt"):  # per-batch INFO lines
            logging.getLogger(noisy).setLevel(logging.WARNING)
        _seed_everything(self.seed)
        self.schema_ = schema
        self.table_ = table.reset_index(drop=True)
        self.groups_ = groups.reset_index(drop=True)
        use_key = self.condition_on and coarse is not None and coarse.nunique() > 1
        self.coarse_ = (
            coarse.reset_index(drop=True).astype(str) if use_key else pd.Series("all", index=self.table_.index)
        )
        # step counts are implied by which step columns are present; modelled separately they contradict them
        data = self.table_.drop(columns=schema.count_columns)
        for c in schema.categorical:
            data[c] = data[c].astype(str)
        if use_key:
            data["_key"] = self.coarse_.to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metadata = Metadata.detect_from_dataframes({"t": data})
            for c in data.columns:
                metadata.update_column(
                    c, table_name="t", sdtype="categorical" if c in schema.categorical or c == "_key" else "numerical"
                )
            self.synth_ = self._synthesizer(metadata)
            epochs = self.epochs if self.kind == "ctgan" else None
            with Progress(
                SpinnerColumn(),
                TextColumn(f"fitting {self.name} on {len(data)} rows × {data.shape[1]} columns"),
                *([BarColumn(), MofNCompleteColumn(), TextColumn("epochs"), TimeRemainingColumn()] if epochs else []),
                TimeElapsedColumn(),
                transient=True,
            ) as bar:
                task = bar.add_task("fit", total=epochs)
                with _ctgan_epochs(lambda: bar.advance(task)) if epochs else contextlib.nullcontext():
                    self.synth_.fit({"t": data})
        self.use_key_ = use_key
        self._fit_assigner()
        return self

    def _fit_assigner(self):
        self.space_ = RecipeSpace(self.table_, self.schema_)
        space = self.space_(self.table_)
        self.nn_ = {
            k: (NearestNeighbors(n_neighbors=1).fit(space[ix]), ix) for k, ix in _class_index(self.coarse_).items()
        }

    def _draw(self, n: int) -> pd.DataFrame:
        # Unconditional pools split by the generated key: the key is a modelled column, so this is conditioning
        # by rejection done once per pool instead of SDV's per-condition resampling (slow for CTGAN).
        out = self.synth_.sample(num_rows=n)["t"]
        if not self.use_key_:
            out["_key"] = "all"
        return out.reset_index(drop=True)

    def sample(self, n_per_class) -> pd.DataFrame:
        from rich.progress import Progress

        _seed_everything(self.seed + 1)
        classes = _class_index(self.groups_)
        asked = _asked(n_per_class, classes)
        taken = {g: [] for g in classes}
        last_need = None
        with warnings.catch_warnings(), Progress(transient=True) as bar:
            warnings.simplefilter("ignore")
            task = bar.add_task(f"sampling {self.name}", total=3)
            for _ in range(3):  # a pool, then top-ups while they still fill short classes
                need = sum(max(0, asked[g] - len(r)) for g, r in taken.items())
                if need == 0 or (last_need is not None and need > 0.8 * last_need):
                    break
                last_need = need
                with contextlib.redirect_stderr(io.StringIO()):  # SDV's own tqdm bars
                    pool = self._draw(max(need * int(self.pool_factor), 200))
                for key, part in pool.groupby(pool["_key"].astype(str)):
                    if key not in self.nn_:
                        continue
                    part = part.drop(columns="_key").reset_index(drop=True)
                    nn, ix = self.nn_[key]
                    nearest = self.groups_.to_numpy()[ix[nn.kneighbors(self.space_(part), return_distance=False)[:, 0]]]
                    for g in np.unique(nearest):
                        room = asked[g] - len(taken[g])
                        if room > 0:
                            taken[g].extend(part.loc[nearest == g].head(room).to_dict("records"))
                bar.advance(task)
        records = [dict(r, **{SOURCE: g}) for g, rows in taken.items() for r in rows]
        cols = [c for c in self.table_.columns if c not in self.schema_.count_columns] + [SOURCE]
        out = pd.DataFrame(records, columns=cols)
        self.class_shortfall_ = {g: asked[g] - len(r) for g, r in taken.items() if len(r) < asked[g]}
        return out


class Blend(BaseEstimator):
    """Several generators, each giving its share of every class's rows (the action plan's e.g. 70 % CTGAN +
    30 % jitter). Parts are fitted on the same real train table; each row keeps its part's name in PART."""

    def __init__(self, name="blend", parts=None, shares=None, threads=BlendConfig.threads, seed=0):
        self.name = name
        self.parts = parts
        self.shares = shares
        self.threads = threads
        self.seed = seed

    def fit(self, table: pd.DataFrame, groups: pd.Series, schema: Schema, coarse=None):
        parts, shares = dict(self.parts or {}), {k: float(v) for k, v in (self.shares or {}).items()}
        if not parts or set(parts) != set(shares):
            raise ValueError(f"blend: shares {sorted(shares)} must name exactly the parts {sorted(parts)}")
        if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
            raise ValueError(f"blend: shares must be >= 0 and not all 0, got {shares}")
        total = sum(shares.values())
        self.shares_ = {k: v / total for k, v in shares.items()}
        self.classes_ = sorted(groups.unique())
        self.parts_ = {}
        for i, (name, gen) in enumerate(sorted(parts.items())):
            part = clone(gen)
            own = {"seed": self.seed + i}
            if "threads" in part.get_params():
                own["threads"] = self.threads
            self.parts_[name] = part.set_params(**own).fit(table, groups, schema, coarse=coarse)
        return self

    def sample(self, n_per_class) -> pd.DataFrame:
        frames, short = [], {}
        asked = _asked(n_per_class, self.classes_)
        for name, part in self.parts_.items():
            n = {g: int(round(self.shares_[name] * k)) for g, k in asked.items()}
            if not any(n.values()):
                continue
            frames.append(part.sample(n).assign(**{PART: name}))
            for g, k in getattr(part, "class_shortfall_", {}).items():
                short[g] = short.get(g, 0) + k
        self.class_shortfall_ = short
        if not frames:
            return pd.DataFrame(columns=[SOURCE, PART])
        # step counts only where every part has them (SDV rows mark absent steps with NaNs instead)
        common = [c for c in frames[0].columns if all(c in f for f in frames)]
        return pd.concat([f[common] for f in frames], ignore_index=True)


def postprocess(synth: pd.DataFrame, real: pd.DataFrame, schema: Schema, window) -> tuple[pd.DataFrame, dict]:
    """The same for every generator: elements clamped to the chemistry window (no negatives; Al = balance
    follows in decode, so Σ = 100), process numbers and schedule steps clipped to the real train range,
    targets clipped to the real range, physics gates (YS <= UTS drops the row, UniformEL <= FractureEL clamps,
    as cleaning does, or unsets UniformEL where the clamp would leave the real range). Every fix is counted;
    `clipped_any` marks rows with at least one fix."""
    out = synth.reset_index(drop=True).copy()
    n = len(out)
    touched = np.zeros(n, bool)
    counts = {"rows_in": n, "negative_elements": 0, "window_clamped": 0, "range_clipped": 0, "target_clipped": 0}
    for el in schema.elements:
        x = out[el].to_numpy(float)
        neg = x < 0
        hi = window.max.get(el, window.unlisted_max)
        lo = max(window.min.get(el, 0.0), 0.0)
        over = (x > hi) if hi is not None else np.zeros(n, bool)
        under = (x < lo) & ~neg
        counts["negative_elements"] += int(neg.sum())
        counts["window_clamped"] += int(over.sum() + under.sum())
        touched |= neg | over | under
        out[el] = np.clip(np.nan_to_num(x), lo, hi if hi is not None else np.inf)
    for col in schema.numeric + schema.step_columns + schema.targets:
        x = out[col].to_numpy(float)
        lo, hi = (
            np.nanmin(real[col].to_numpy(float)) if real[col].notna().any() else -np.inf,
            np.nanmax(real[col].to_numpy(float)) if real[col].notna().any() else np.inf,
        )
        bad = np.isfinite(x) & ((x < lo) | (x > hi))
        counts["target_clipped" if col in schema.targets else "range_clipped"] += int(bad.sum())
        touched |= bad
        out[col] = np.where(np.isfinite(x), np.clip(x, lo, hi), x)
    gates = {"ys_gt_uts_dropped": 0, "uniform_el_clamped": 0, "uniform_el_unset": 0}
    keep = np.ones(n, bool)
    if {"YS", "UTS"} <= set(out.columns):
        bad = (out["YS"] > out["UTS"]).to_numpy()
        gates["ys_gt_uts_dropped"] = int(bad.sum())
        keep &= ~bad
        if SOURCE in out and bad.any():  # so QC can judge the generator's own class balance (qc.evaluate)
            counts["dropped_by_class"] = out.loc[bad, SOURCE].value_counts().to_dict()
    if {"UniformEL", "FractureEL"} <= set(out.columns):
        bad = (out["UniformEL"] > out["FractureEL"]).to_numpy()
        gates["uniform_el_clamped"] = int(bad.sum())
        out.loc[bad, "UniformEL"] = out.loc[bad, "FractureEL"]
        touched |= bad
        # a fracture elongation below every real uniform one leaves no uniform value that is both <= it and in
        # the real range: that row's UniformEL label is left unset rather than made up
        lo = np.nanmin(real["UniformEL"].to_numpy(float)) if real["UniformEL"].notna().any() else -np.inf
        unset = bad & (out["UniformEL"].to_numpy(float) < lo)
        gates["uniform_el_unset"] = int(unset.sum())
        out.loc[unset, "UniformEL"] = np.nan
    counts.update(gates)
    counts["rows_clipped"] = int(touched[keep].sum())
    counts["rows_out"] = int(keep.sum())
    counts["clip_rate_pct"] = 100.0 * counts["rows_clipped"] / max(1, counts["rows_out"])
    return out.loc[keep].reset_index(drop=True), counts
