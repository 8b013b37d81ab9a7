"""`python -m alloy_hydra.predict`: the command lives in alloy_hydra/cli/predict.py."""

import sys

from .cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
