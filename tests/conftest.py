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


# a registry with YS, UTS and FractureEL (hinge formulas, two seeds each = a committee per target), built once per
# test worker from a sweep through run.py; the sweep dir is kept beside it so tests can compare with run.py
REGISTRY_SWEEP = [
    "-m",
    "regressor=hinge",
    "target=YS,UTS,FractureEL",
    "seed=1,2",
    "generator=none",
    "stages=[clean,split,train,audit]",
    "qc.plots=false",
    "summary=false",
]


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory):
    from alloy_hydra.registry import Registry

    root = tmp_path_factory.mktemp("registry")
    proc = run_cli([*REGISTRY_SWEEP, f"hydra.sweep.dir={root}/sweep"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    reg = Registry(root / "models")
    reg.publish(root / "sweep", alias="champion")
    return reg
