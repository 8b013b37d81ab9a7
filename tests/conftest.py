import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
UQ = SHARED_DATA / "uq_al_alloys.csv"
HU = SHARED_DATA / "hu2021_al_data.csv"

sys.path.insert(0, str(ROOT))

from alloy_hydra.config import compose  # noqa: E402, F401  (tests import it from here: the typed config run.py uses)


@pytest.fixture
def needs_shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public datasets not found at {SHARED_DATA} (the repo's sibling shared/data folder)")


def run_cli(args, cwd=ROOT, timeout=3600):  # generous: a busy machine must not fail a test
    import subprocess

    # two xdist workers share 2 cores: one BLAS/OpenMP thread per run avoids oversubscription
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
