"""alloy_hydra entry point: compose the config and run the pipeline (clean -> ...) into the Hydra run dir."""
import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from alloy_hydra import config, pipeline, report
from alloy_hydra.errors import AlloyHydraError

config.register()
log = logging.getLogger("alloy_hydra")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = HydraConfig.get().runtime.output_dir
    try:
        metrics = pipeline.run(cfg, run_dir)
    except AlloyHydraError as err:  # the user's data or config: a clear message, no traceback
        log.error("%s", err)
        if HydraConfig.get().mode.name == "MULTIRUN":
            raise
        sys.exit(2)
    if cfg.summary:
        report.print_summary(metrics, run_dir)


if __name__ == "__main__":
    main()
