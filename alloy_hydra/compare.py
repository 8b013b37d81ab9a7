"""`python -m alloy_hydra.compare`: the command lives in alloy_hydra/cli/compare.py."""

import sys

from .cli.compare import main

if __name__ == "__main__":
    sys.exit(main())
