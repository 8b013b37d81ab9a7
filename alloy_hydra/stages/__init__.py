"""The run: named stages in order, each a module here with `run(cfg, run_dir, metrics, <earlier results>)`
that writes its artifacts and returns a small result type saying what it hands on.

A stage names the earlier stages it needs as parameters (`split: Split`); one with a default (`generate:
Generated | None = None`) is optional. So the stage signatures are the dependency graph: a stage list that
leaves out a needed stage is a ConfigError before any work. Hydra-free: `run(cfg, run_dir)` takes the typed
config of alloy_hydra.config. `status.json` says running / complete / failed, and `metrics.json` is written
only when every stage finished, so a failed run never looks complete.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import time
import traceback
from pathlib import Path

from ..config import STAGES as NAMES
from ..errors import AlloyHydraError, ConfigError
from ..io import write_json
from . import audit, clean, design, generate, qc, split, train

log = logging.getLogger(__name__)

_MODULES = (clean, split, generate, qc, train, audit, design)
STAGES = {name: module.run for name, module in zip(NAMES, _MODULES)}  # config.STAGES names them, in run order
assert all(m.__name__.endswith("." + n) for n, m in zip(NAMES, _MODULES)), "config.STAGES and stages/ disagree"
_OWN = ("cfg", "run_dir", "metrics")


def needs(stage: str) -> tuple[list[str], list[str]]:
    """(required, optional) earlier stages of a stage, read from its signature."""
    params = [p for p in inspect.signature(STAGES[stage]).parameters.values() if p.name not in _OWN]
    return (
        [p.name for p in params if p.default is inspect.Parameter.empty],
        [p.name for p in params if p.default is not inspect.Parameter.empty],
    )


def check_stages(stages) -> list[str]:
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; built stages are {list(STAGES)}")
    for i, s in enumerate(stages):
        missing = [r for r in needs(s)[0] if r not in stages[:i]]
        if missing:
            raise ConfigError(f"stage {s!r} needs {missing} before it in stages={list(stages)}")
    return list(stages)


def execute(cfg, run_dir, stages, metrics: dict | None = None) -> dict:
    """Run the named stages in order into run_dir; returns {stage: result} (metrics gathered in `metrics`)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = {} if metrics is None else metrics
    results = {}
    for name in check_stages(stages):
        required, optional = needs(name)
        t0 = time.perf_counter()
        log.info("stage %s", name)
        results[name] = STAGES[name](
            cfg,
            run_dir,
            metrics,
            **{r: results[r] for r in required},
            **{o: results[o] for o in optional if o in results},
        )
        metrics[f"time_{name}_s"] = round(time.perf_counter() - t0, 3)
    return results


def run(cfg, run_dir) -> dict:
    """Run the configured stages into run_dir; returns the flat metrics dict (also metrics.json)."""
    from ..config import check_options

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").unlink(missing_ok=True)
    # pid and host: a run killed or crashed before it could write its end is told apart later (io.read_run)
    write_json(
        run_dir / "status.json",
        {"status": "running", "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()},
    )
    metrics = {"data": cfg.data.name, "target": cfg.target.name}
    try:
        check_options(cfg)
        execute(cfg, run_dir, cfg.stages, metrics)
    except AlloyHydraError as err:
        write_json(run_dir / "status.json", {"status": "failed", "error": str(err), "kind": type(err).__name__})
        raise
    except Exception as err:
        write_json(
            run_dir / "status.json", {"status": "failed", "error": repr(err), "traceback": traceback.format_exc()}
        )
        raise
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "status.json", {"status": "complete"})
    return metrics
