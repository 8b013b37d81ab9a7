"""The model registry: trained models as immutable, numbered, checksummed versions per target, with aliases.

    models/                     registry.path (default models/ where the command runs; --registry on commands)
      index.json                per target: its versions (created, manifest sha256, source) and aliases
      YS/1/                     one version: everything needed to predict and design without the run dir
        model_0.json ...        the model, or the committee's members (the chosen run first); JSON, never pickle
        config.yaml             the run config it was trained under (data schema, cleaning, chem window)
        BASE_MASTER.csv         the cleaned cards the design space is built from (without the _RAW columns)
        card.json               the model card: target, unit, method, data, metrics, physics, coverage, config diff
        MANIFEST.json           sha256 of every file above

A version is written into a temporary folder, renamed into place and only then entered in the index, all under
a file lock: a crash leaves at most an unlisted folder, never a half-listed version, and two publishes never
write the index at once. Loading checks the manifest against the index and every file against the manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from . import __version__
from .clean import data_path
from .config import RegistryConfig, load_config_file, load_run_config
from .errors import AlloyHydraError
from .io import read_run
from .model import Model
from .selection import as_model, committee_holdout, pick_runs

FORMAT = "alloy_hydra.registry/1"
FILES = ("config.yaml", "BASE_MASTER.csv", "card.json")
CARD_METRICS = (
    "holdout_r2",
    "holdout_mae",
    "holdout_rmse",
    "cv_mae",
    "coverage_1sigma",
    "coverage_2sigma",
    "sigma_error_spearman",
    "holdout_in_domain_share",
    "holdout_mae_in_domain",
    "holdout_mae_out_domain",
    "complexity",
)


class RegistryError(AlloyHydraError):
    """A registry that does not hold what was asked for, or a version whose files do not match its checksums."""


class RegistryDamaged(RegistryError):
    """The registry's own files fail their checks (an index that does not parse, a version whose files do not
    match its manifest): the server's fault, never the request's."""


@dataclass
class Version:
    target: str
    number: int
    path: Path
    model: object  # Model | Committee
    config: object  # the typed run config it was trained under
    master: pd.DataFrame
    card: dict

    @property
    def ref(self) -> str:
        return f"{self.target}:{self.number}"


def one_dataset(versions: dict) -> None:
    """Versions designed together must be trained on the same cards (one design space, one data schema)."""
    if len({v.card["training"]["base_master_sha256"] for v in versions.values()}) > 1:
        raise RegistryError(
            "the versions " + ", ".join(v.ref for v in versions.values()) + " were trained on different cards; "
            "design needs models of one dataset"
        )


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse(spec: str) -> tuple[str, str | None]:
    """'YS' (latest), 'YS:3' (version 3), 'YS@champion' (an alias) -> (target, ref)."""
    for sep in ("@", ":"):
        if sep in spec:
            target, ref = spec.split(sep, 1)
            return target, ref
    return spec, None


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class Registry:
    def __init__(self, path=RegistryConfig.path):
        self.path = Path(path).expanduser()

    # --- reading ----------------------------------------------------------------------------------------------
    def index(self) -> dict:
        p = self.path / "index.json"
        if not p.exists():
            return {"format": FORMAT, "targets": {}}
        try:
            idx = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            raise RegistryDamaged(f"{p} is not valid JSON ({err})") from None
        if not isinstance(idx, dict) or idx.get("format") != FORMAT or not isinstance(idx.get("targets"), dict):
            raise RegistryDamaged(f"{p} is not an alloy_hydra registry index")
        return idx

    def targets(self) -> list[str]:
        return sorted(self.index()["targets"])

    def resolve(self, target: str, ref=None) -> int:
        """The version number `ref` names: None/'latest' the newest, a number, or an alias."""
        entry = self.index()["targets"].get(target)
        if not entry or not entry["versions"]:
            have = ", ".join(self.targets()) or "none"
            raise RegistryError(f"no published model for target {target!r} in {self.path} (targets: {have})")
        versions = sorted(int(v) for v in entry["versions"])
        if ref is None or str(ref) == "latest":
            return versions[-1]
        if str(ref).isdigit():
            if int(ref) not in versions:
                raise RegistryError(f"{target} has no version {ref} (versions {versions})")
            return int(ref)
        if str(ref) not in entry["aliases"]:
            raise RegistryError(
                f"{target} has no alias {ref!r} (aliases: {', '.join(sorted(entry['aliases'])) or 'none'})"
            )
        return int(entry["aliases"][str(ref)])

    def verify(self, target: str, number: int) -> Path:
        """The version's folder, after checking its manifest against the index and its files against the
        manifest (a tampered or half-written version is an error naming the file)."""
        entry = self.index()["targets"][target]["versions"][str(number)]
        folder = self.path / target / str(number)
        manifest = folder / "MANIFEST.json"
        if not manifest.exists():
            raise RegistryDamaged(f"{target}:{number}: {folder} is missing or half-written (no MANIFEST.json)")
        if sha256(manifest) != entry["manifest_sha256"]:
            raise RegistryDamaged(f"{target}:{number}: MANIFEST.json does not match the index (tampered?)")
        for name, digest in json.loads(manifest.read_text())["files"].items():
            f = folder / name
            if not f.exists():
                raise RegistryDamaged(f"{target}:{number}: {name} is missing")
            if sha256(f) != digest:
                raise RegistryDamaged(f"{target}:{number}: {name} does not match its sha256 (changed after publishing)")
        return folder

    def load(self, target: str, ref=None) -> Version:

        number = self.resolve(target, ref)
        folder = self.verify(target, number)
        files = json.loads((folder / "MANIFEST.json").read_text())["files"]
        members = sorted((n for n in files if n.startswith("model_")), key=lambda n: int(n[6:-5]))
        cfg = load_config_file(folder / "config.yaml")
        master = pd.read_csv(folder / "BASE_MASTER.csv", dtype={c: str for c in cfg.data.id_columns})
        card = json.loads((folder / "card.json").read_text())
        return Version(target, number, folder, as_model([folder / m for m in members]), cfg, master, card)

    def load_many(self, refs: dict) -> dict[str, Version]:
        """{target: ref} -> {target: Version}; the versions must share their training data (one design space)."""
        out = {t: self.load(t, r) for t, r in refs.items()}
        one_dataset(out)
        return out

    def rows(self) -> list[dict]:
        """One row per version: target, version, aliases, created, method, holdout R²/MAE, physics."""
        out = []
        for target, entry in sorted(self.index()["targets"].items()):
            aliases = {}
            for a, v in entry["aliases"].items():
                aliases.setdefault(int(v), []).append(a)
            for v in sorted(entry["versions"], key=int):
                card_path = self.path / target / v / "card.json"
                card = json.loads(card_path.read_text()) if card_path.exists() else {}
                out.append(
                    {
                        "target": target,
                        "version": int(v),
                        "aliases": ",".join(sorted(aliases.get(int(v), []))),
                        "created": entry["versions"][v]["created"],
                        "method": card.get("method", ""),
                        "members": len(card.get("members", [])),
                        "holdout_r2": card.get("metrics", {}).get("holdout_r2"),
                        "holdout_mae": card.get("metrics", {}).get("holdout_mae"),
                        "physics_pass": card.get("physics_pass"),
                    }
                )
        return out

    # --- writing ----------------------------------------------------------------------------------------------
    def _lock(self):
        from filelock import FileLock

        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path / ".lock"))

    def _save_index(self, idx: dict) -> None:
        _atomic_write(self.path / "index.json", json.dumps(idx, indent=2) + "\n")

    def publish(self, source, alias: str | None = None, combine: str = "committee") -> list[tuple[str, int]]:
        """Publish a run dir's model, or each target's chosen model or committee of a sweep dir (the sweep's own
        rule, selection.pick_runs); returns [(target, version)]."""

        source = Path(source).expanduser().resolve()
        if not source.exists():
            raise RegistryError(f"{source} does not exist")
        runs = pick_runs(source, combine)
        for members in runs.values():
            for run in members:
                status = json.loads((run / "status.json").read_text()) if (run / "status.json").exists() else {}
                if status.get("status") != "complete":
                    raise RegistryError(f"{run} is not a complete run (status {status.get('status')!r})")
                if not (run / "BASE_MASTER.csv").exists():
                    raise RegistryError(f"{run} has no BASE_MASTER.csv (did the run include the clean stage?)")
        published = []
        for target, members in runs.items():
            tmp = self._stage(target, members)
            with self._lock():
                idx = self.index()
                entry = idx["targets"].setdefault(target, {"versions": {}, "aliases": {}})
                taken = [int(v) for v in entry["versions"]]
                taken += [int(p.name) for p in (self.path / target).iterdir() if p.name.isdigit()]
                number = max(taken, default=0) + 1
                folder = self.path / target / str(number)
                os.rename(tmp, folder)
                entry["versions"][str(number)] = {
                    "created": json.loads((folder / "card.json").read_text())["created"],
                    "manifest_sha256": sha256(folder / "MANIFEST.json"),
                    "source": str(members[0]),
                }
                if alias:
                    entry["aliases"][alias] = number
                self._save_index(idx)
            published.append((target, number))
        return published

    def alias(self, target: str, number, name: str) -> None:
        if not name or name.isdigit() or name == "latest":
            raise RegistryError(f"alias {name!r}: use a name such as champion (not a number or 'latest')")
        with self._lock():
            idx = self.index()
            number = self.resolve(target, number)
            idx["targets"][target]["aliases"][name] = number
            self._save_index(idx)

    def _stage(self, target: str, members: list[Path]) -> Path:
        """The version's files in a temporary folder beside its final place, read-only, with their manifest."""
        (self.path / target).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.path / target, prefix=".tmp-"))
        first = members[0]
        names = []
        for i, run in enumerate(members):
            shutil.copyfile(run / "model.json", tmp / f"model_{i}.json")
            names.append(f"model_{i}.json")
        shutil.copyfile(first / ".hydra" / "config.yaml", tmp / "config.yaml")
        master = pd.read_csv(first / "BASE_MASTER.csv", dtype=str, keep_default_na=False)
        master[[c for c in master.columns if not c.endswith("_RAW")]].to_csv(tmp / "BASE_MASTER.csv", index=False)
        card = model_card(target, members)
        card["training"]["base_master_sha256"] = sha256(tmp / "BASE_MASTER.csv")
        (tmp / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
        files = {n: sha256(tmp / n) for n in [*names, *FILES]}
        (tmp / "MANIFEST.json").write_text(json.dumps({"format": FORMAT, "files": files}, indent=2) + "\n")
        for f in tmp.iterdir():
            f.chmod(0o444)
        tmp.chmod(0o755)
        return tmp


def _coverage(path: Path, target: str) -> dict:
    """coverage.csv in brief: classes (alloy groups) and how many of them hold labels of the target."""
    if not path.exists():
        return {}
    cov = pd.read_csv(path)
    col = f"{target}_labels"
    labelled = cov[col] > 0 if col in cov else pd.Series(False, index=cov.index)
    return {
        "classes": int(len(cov)),
        "classes_with_labels": int(labelled.sum()),
        "labels": int(cov[col].sum()) if col in cov else 0,
        "classes_without_labels": int((~labelled).sum()),
    }


def _member_rows(members: list[Path]) -> list[dict]:
    rows = []
    for run in members:
        run_cfg, m, _ = read_run(run)
        rows.append(
            {
                "run": str(run),
                "seed": run_cfg.get("seed"),
                "holdout_r2": m.get("holdout_r2"),
                "holdout_mae": m.get("holdout_mae"),
                "physics_pass": m.get("physics_pass"),
            }
        )
    return rows


def _training(metrics: dict, path: Path) -> dict:
    """What the model learnt from: rows and groups, the holdout's, and the file with its checksum."""
    return {
        "rows": metrics.get("n_train_model_rows", metrics.get("n_train_rows")),
        "groups": metrics.get("n_train_groups"),
        "holdout_rows": metrics.get("n_holdout_rows"),
        "holdout_groups": metrics.get("n_holdout_groups"),
        "file": str(path),
        "file_sha256": sha256(path) if Path(path).exists() else None,
    }


def model_card(target: str, members: list[Path]) -> dict:
    """What a reader needs to trust a version: what it predicts, how it was made, how well it did where."""
    first = members[0]
    cfg = load_run_config(first)
    raw_cfg, metrics, _ = read_run(first)
    model = Model.load(first / "model.json")
    overrides = first / ".hydra" / "overrides.yaml"
    committee = committee_holdout(members)
    return {
        "target": target,
        "unit": model.unit,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__,
        "method": metrics.get("regressor", cfg.regressor.get("name")),
        "generator": {"configured": metrics.get("generator"), "used": metrics.get("generator_used")},
        "combine": "committee" if len(members) > 1 else "single",
        "members": _member_rows(members),
        "data": cfg.data.name,
        "chem_window": cfg.chem_window.name,
        "training": _training(metrics, data_path(cfg.data, cfg.paths.data_dir)),
        # a committee's card holds the committee's own figures on the holdout its members share (its members'
        # single figures stay under `members`): the monitor compares new error with what the service predicts
        "metrics": {**{k: metrics.get(k) for k in CARD_METRICS}, **(committee or {})},
        "metrics_of": "committee on the shared holdout" if committee else "the single model",
        "physics_pass": metrics.get("physics_pass"),
        "physics_checks_applicable": metrics.get("physics_checks_applicable"),
        "coverage": _coverage(first / "coverage.csv", target),
        "config_diff": list(OmegaConf.load(overrides)) if overrides.exists() else [],
        "features": model.features,
        "source": str(first),
        "seed": raw_cfg.get("seed"),
    }


if __name__ == "__main__":  # python -m alloy_hydra.registry: the commands live in cli/registry.py
    import sys

    from alloy_hydra.cli.registry import main

    sys.exit(main())
