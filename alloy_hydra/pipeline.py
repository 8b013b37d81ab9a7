"""The run: named stages in order, each a plain function of (config, run dir, state) that writes artifacts.

Hydra-free: `run(cfg, run_dir)` works with any OmegaConf config of the schema in alloy_hydra.config.
`status.json` says running / complete / failed, and `metrics.json` is written only when every stage finished,
so a failed run never looks complete.
"""
from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Callable

from . import clean as clean_mod
from .errors import AlloyHydraError, ConfigError
from .io import read_cards, write_json

log = logging.getLogger(__name__)


class RunState(dict):
    """What stages hand to later stages (DataFrames, models) plus the flat metrics dict."""

    @property
    def metrics(self) -> dict:
        return self.setdefault("_metrics", {})


def data_path(data) -> Path:
    from .demo import demo_path
    if data.path in (None, "", "???"):
        if data.name != "demo":
            raise ConfigError(f"data={data.name} needs data.path=<csv file> (see the README for where to get it)")
        return demo_path()
    return Path(data.path).expanduser().resolve()   # relative to where the user ran the command


def stage_clean(cfg, run_dir: Path, state: RunState) -> None:
    if cfg.target.name not in cfg.data.targets:
        raise ConfigError(f"target={cfg.target.name}: dataset {cfg.data.name!r} has no such property "
                          f"(it has {list(cfg.data.targets)})")
    path = data_path(cfg.data)
    raw = read_cards(path, delimiter=cfg.data.delimiter)
    result = clean_mod.clean(raw, cfg.data, cfg.chem_window, cfg.cleaning, source=path)
    view, view_report = clean_mod.make_view(result.master, cfg.target)
    if view.empty:
        raise ConfigError(f"no {cfg.target.name} labels left after cleaning {path} "
                          f"({result.report['rows_rejected']} of {result.report['rows_in']} rows rejected; "
                          f"reasons {result.report['reject_reasons']})")
    targets = list(cfg.data.targets)
    result.master.to_csv(run_dir / "BASE_MASTER.csv", index=False)
    view.to_csv(run_dir / "view.csv", index=False)
    result.rejects.to_csv(run_dir / "rejects.csv", index=False)
    clean_mod.coverage(result.master, targets).to_csv(run_dir / "coverage.csv", index=False)
    clean_mod.labels_needed(result.master, targets, list(cfg.data.id_columns)).to_csv(
        run_dir / "labels_needed.csv", index=False)
    write_json(run_dir / "cleaning_report.json", {**result.report, "view": view_report})
    state.update(master=result.master, view=view, raw_path=path)
    r = result.report
    state.metrics.update(rows_in=r["rows_in"], rows_kept=r["rows_kept"], rows_rejected=r["rows_rejected"],
                         view_rows=view_report["view_rows"], view_groups=int(view[clean_mod.GROUP_COL].nunique()),
                         target_clipped=view_report["clipped_low"] + view_report["clipped_high"])


STAGES: dict[str, Callable] = {"clean": stage_clean}


def check_stages(stages) -> list[str]:
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; built stages are {list(STAGES)}")
    return list(stages)


def run(cfg, run_dir) -> dict:
    """Run the configured stages into run_dir; returns the flat metrics dict (also metrics.json)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").unlink(missing_ok=True)
    write_json(run_dir / "status.json", {"status": "running"})
    state = RunState()
    state.metrics.update(data=cfg.data.name, target=cfg.target.name)
    try:
        for name in check_stages(cfg.stages):
            t0 = time.perf_counter()
            log.info("stage %s", name)
            STAGES[name](cfg, run_dir, state)
            state.metrics[f"time_{name}_s"] = round(time.perf_counter() - t0, 3)
    except AlloyHydraError as err:
        write_json(run_dir / "status.json", {"status": "failed", "error": str(err), "kind": type(err).__name__})
        raise
    except Exception as err:
        write_json(run_dir / "status.json", {"status": "failed", "error": repr(err),
                                             "traceback": traceback.format_exc()})
        raise
    write_json(run_dir / "metrics.json", state.metrics)
    write_json(run_dir / "status.json", {"status": "complete"})
    return state.metrics
