"""The public datasets the README's real-data commands read: fetched once from their original source, checked, and
kept in a cache outside the project (pooch). `data=uq_al` / `data=hu2021` read the cached copy unless `data.path`
names another file.

    python -m alloy_hydra.datasets list                 # what there is, where it comes from, whether it is cached
    python -m alloy_hydra.datasets fetch uq_al hu2021   # download (once), check, cache
    python -m alloy_hydra.datasets add uq_al my_copy.csv  # a copy you already have: checked, then cached (offline)

The cache is the folder given (`--dir`; a run's `paths.data_dir`, conf/paths), else `$ALLOY_HYDRA_DATA`, else the
platform's user cache (`pooch.os_cache("alloy_hydra")`). Every file is
checked as it enters the cache (fetch, add; fetch checks a cached copy again): its bytes against their SHA-256
where the source publishes the file itself, and always the table's content fingerprint (the values, not their
formatting), so a cached copy is the table the project was built and tested on. A run reads the cached copy as
it is (`path`). The uq_al source is a spreadsheet: it is downloaded, converted to CSV, and the
converted table checked by its fingerprint (the spreadsheet's own bytes carry no published checksum).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import AlloyHydraError, ConfigError

CACHE_ENV = "ALLOY_HYDRA_DATA"


@dataclass(frozen=True)
class Dataset:
    file: str  # the cached CSV's name
    url: str  # the original source, pinned to a commit
    about: str
    sha256: str  # of the CSV's bytes as published (a file fetched from a spreadsheet is checked by fingerprint only)
    fingerprint: str  # content_fingerprint of the table (of the copy the project was built and tested on)
    spreadsheet: bool = False  # the source is .xlsx: converted to CSV on fetch


DATASETS = {
    "uq_al": Dataset(
        file="uq_al_alloys.csv",
        url="https://github.com/UQ43815685/mitigating_data_bias_for_Al_alloys_design/raw/"
        "59ed709a2cca52bf0de175db84047f2ce9757575/dataset.xlsx",
        about="1150 wrought Al alloy cards (1xxx-8xxx): 18 elements, heat treatment, route; YTS, UTS, EL "
        "(dataset.xlsx of UQ43815685/mitigating_data_bias_for_Al_alloys_design)",
        sha256="0beea27412391fca5bb0596bc7ff17ea3bf9492fe4e5cd0c1c6d4588a1cec907",
        fingerprint="820b99473f51b486a0a32c92ccab3885bd9acd4ba520632114d4d4e4240a6766",
        spreadsheet=True,
    ),
    "hu2021": Dataset(
        file="hu2021_al_data.csv",
        url="https://raw.githubusercontent.com/vidyakanekanti/aluminium-yield-strength-predictor/"
        "1bfb59e73aceb8f88ef61bb4b41d85e700070062/al_data.csv",
        about="1154 wrought Al alloy cards: processing route, 25 elements (mass fractions); elongation, UTS, YS "
        "(Hu et al., Metall. Mater. Trans. A 2021, as redistributed in vidyakanekanti/aluminium-yield-strength-"
        "predictor)",
        sha256="1545bebb929d0585a968c8ebc295164ce823a4e6d46262e0297c4d5de358bdd7",
        fingerprint="5bc37cd807d869c2257c00f6a4aba2deb0ed669f8d5aa39d36ba676dd6c49a6f",
    ),
}


def cache_dir(folder: str | Path | None = None) -> Path:
    """`folder` (paths.data_dir) if given, else $ALLOY_HYDRA_DATA, else the platform's user cache."""
    if folder:
        return Path(folder).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("alloy_hydra"))


def dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; there are: {', '.join(DATASETS)}")
    return DATASETS[name]


def content_fingerprint(table: pd.DataFrame) -> str:
    """SHA-256 of a table's values in a canonical text form (numbers to 10 significant digits, text stripped):
    the same for the same table whether it was read from a spreadsheet or from any CSV written of it."""
    canon = table.copy()
    canon.columns = [str(c).strip() for c in canon.columns]
    for c in canon.columns:
        if pd.api.types.is_numeric_dtype(canon[c]):
            canon[c] = canon[c].astype(float).map(lambda v: "" if pd.isna(v) else f"{v:.10g}")
        else:
            canon[c] = canon[c].map(lambda v: "" if pd.isna(v) else str(v).strip())
    return hashlib.sha256(canon.to_csv(index=False, lineterminator="\n").encode()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(name: str, path: Path, *, bytes_too: bool = True) -> None:
    """Raise unless `path` holds dataset `name`: its bytes (where published) and its table's fingerprint."""
    ds = dataset(name)
    if bytes_too and not ds.spreadsheet and _sha256(path) != ds.sha256:
        raise AlloyHydraError(
            f"{path}: not the published {name} file (SHA-256 {_sha256(path)[:12]}…, expected {ds.sha256[:12]}…)"
        )
    got = content_fingerprint(pd.read_csv(path))
    if got != ds.fingerprint:
        raise AlloyHydraError(
            f"{path}: its table differs from the {name} dataset (fingerprint {got[:12]}…, expected "
            f"{ds.fingerprint[:12]}…)"
        )


def path(name: str, folder: str | Path | None = None) -> Path:
    """The cached CSV of a dataset, for data configs that name it (`folder`: paths.data_dir); a ConfigError that
    says how to get it when it is not cached."""
    ds = dataset(name)
    cached = cache_dir(folder) / ds.file
    if not cached.is_file():
        raise ConfigError(
            f"data={name} reads the public {name} file from the cache ({cached}), which does not hold it yet: "
            f"python -m alloy_hydra.datasets{f' --dir {folder}' if cache_dir(folder) != cache_dir() else ''} "
            f"fetch {name} "
            "(or data.path=<your copy>)"
        )
    return cached


def add(name: str, source: Path, folder: str | Path | None = None) -> Path:
    """Cache a copy the user already has, after checking it is the dataset (no network)."""
    ds = dataset(name)
    source = Path(source).expanduser().resolve()
    if not source.is_file():
        raise AlloyHydraError(f"{source}: file not found")
    check(name, source, bytes_too=True)
    target = cache_dir(folder) / ds.file
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)  # a reader never sees half a file
    return target


def fetch(name: str, folder: str | Path | None = None) -> Path:
    """Download a dataset from its original source into the cache (once), check it, and return its CSV."""
    import pooch

    ds = dataset(name)
    target = cache_dir(folder) / ds.file
    if target.is_file():
        check(name, target, bytes_too=not ds.spreadsheet)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    known = None if ds.spreadsheet else f"sha256:{ds.sha256}"
    try:
        got = Path(pooch.retrieve(ds.url, known_hash=known, path=cache_dir(folder) / "sources", progressbar=False))
    except Exception as e:  # network, HTTP or checksum: one line, with the source
        raise AlloyHydraError(f"{name}: could not fetch {ds.url}: {e}") from None
    tmp = target.with_suffix(".part")
    if ds.spreadsheet:
        pd.read_excel(got).to_csv(tmp, index=False)
    else:
        shutil.copyfile(got, tmp)
    try:
        check(name, tmp, bytes_too=not ds.spreadsheet)
    except AlloyHydraError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.datasets", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--dir", default=None, help=f"the cache (a run's paths.data_dir; default ${CACHE_ENV}, else the user cache)"
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the datasets, their sources and whether they are cached")
    f = sub.add_parser("fetch", help="download from the original source, check, cache")
    f.add_argument("names", nargs="+", choices=sorted(DATASETS))
    a = sub.add_parser("add", help="cache a copy you have (checked first; no network)")
    a.add_argument("name", choices=sorted(DATASETS))
    a.add_argument("file")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "list":
            for name, ds in DATASETS.items():
                cached = cache_dir(args.dir) / ds.file
                state = "cached" if cached.is_file() else "not fetched"
                print(f"{name}: {ds.about}\n  source {ds.url}\n  cache  {cached} ({state})")
        elif args.cmd == "fetch":
            for name in args.names:
                print(f"{name}: {fetch(name, args.dir)}")
        else:
            print(f"{args.name}: {add(args.name, Path(args.file), args.dir)}")
    except AlloyHydraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
