"""alloy_hydra entry point: compose the config and run the pipeline (clean -> ... -> design) into the run dir."""

import json
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from alloy_hydra import config
from alloy_hydra.errors import AlloyHydraError

config.register()
log = logging.getLogger("alloy_hydra")


def job_threads(cfg, hc) -> int:
    """Threads for this job: jobs x threads never oversubscribes the cores."""
    if cfg.threads:
        return int(cfg.threads)
    if hc.mode.name == "MULTIRUN" and hc.launcher.get("cpus_per_task"):  # submitit: the job's own cpus
        return int(hc.launcher.cpus_per_task)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = int(hc.launcher.get("n_jobs", 1) or 1) if hc.mode.name == "MULTIRUN" else 1
    return max(1, cores // max(1, jobs))


def discard_if_empty(run_dir: Path) -> None:
    """A run that failed on its config leaves no run dir behind (only when it holds nothing but Hydra's own)."""
    import shutil

    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", "run.log"}:
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig):
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode.name == "MULTIRUN"
    status = run_dir / "status.json"
    if cfg.resume and status.exists() and json.loads(status.read_text()).get("status") == "complete":
        log.info("resume: %s is complete, skipped", run_dir)
        return "skipped"
    try:  # config errors before the stages are imported (seconds) and before any work
        config.check_data(cfg)
    except AlloyHydraError as err:
        log.error("%s", err)
        if multirun:
            return "failed"
        discard_if_empty(run_dir)
        sys.exit(2)
    threads = job_threads(cfg, hc)
    from alloy_hydra import report, stages  # here, not at the top: a sweep's launcher process never needs them

    with open_dict(cfg):  # the SR engine and SDV/torch follow the job's share of the cores
        for node in ("regressor", "generator"):
            for key in ("n_threads", "threads"):
                if key in cfg[node]:
                    cfg[node][key] = threads
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=threads):
            metrics = stages.run(config.typed(cfg), run_dir)
    except AlloyHydraError as err:  # the user's data or config: a clear message, no traceback
        log.error("%s", err)
        if multirun:
            return "failed"  # the other jobs go on; the sweep report marks this one
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 - in a sweep one broken job must not take the others down
        if not multirun:
            raise
        log.exception("job failed: %s", err)
        return "failed"
    if cfg.summary:
        report.print_summary(metrics, run_dir)
    return "complete"


if __name__ == "__main__":
    problem = config.check_group_options(sys.argv[1:])
    if problem:  # before Hydra: its own message would list the internal base_* schemas as options
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
