import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # local copies of the public datasets (never the network)

sys.path.insert(0, str(ROOT))

from alloy_hydra import datasets  # noqa: E402
from alloy_hydra.config import compose  # noqa: E402, F401  (tests import it from here: the typed config run.py uses)

# The tests read the public datasets the way a user's run does, from the dataset cache (data=uq_al without a
# data.path), here a private one filled from the local copies by `datasets.add` (checked, like a download).
DATA_CACHE = Path(tempfile.mkdtemp(prefix="alloy_hydra_datasets_"))
os.environ[datasets.CACHE_ENV] = str(DATA_CACHE)  # run_cli's runs inherit it
atexit.register(shutil.rmtree, DATA_CACHE, True)
UQ = DATA_CACHE / datasets.DATASETS["uq_al"].file
HU = DATA_CACHE / datasets.DATASETS["hu2021"].file


@pytest.fixture
def needs_shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public datasets not found at {SHARED_DATA} (the repo's sibling shared/data folder)")
    for name, ds in datasets.DATASETS.items():
        if not (DATA_CACHE / ds.file).is_file():
            datasets.add(name, SHARED_DATA / ds.file)


def run_cli(args, cwd=ROOT, timeout=3600, env=None):  # generous: a busy machine must not fail a test
    import subprocess

    # two xdist workers share 2 cores: one BLAS/OpenMP thread per run avoids oversubscription
    env = {
        **os.environ,
        **(env or {}),
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
