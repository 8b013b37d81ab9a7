"""An active-learning campaign: which experiments to run next to reach the target properties fastest.

A campaign is a folder:

    campaign.json      the state (targets, tolerances, constraints, the exploration dial, pending experiments,
                       failed ones, the history of rounds, the sha256 of cards.csv); JSON that round-trips exactly
    cards.csv          every measured card it has, in the lab's schema (the initial cards, then each round's)
    rounds/rK/         round K: the models trained on the cards of that round (normal run dirs), batch.csv
    .commit/           a step being written (redo journal, see `commit`); .lock: one command at a time

Every change of campaign.json and cards.csv is one step: both are written into .commit/ (fsync), a COMMITTED
marker makes the step durable, then they replace the old files and .commit/ goes. A command killed before the
marker leaves the old state (the journal is dropped on the next load), after it the new one (the next load
finishes the step). Loading checks cards.csv against the sha256 the state recorded.

Verbs (Python and `python -m alloy_hydra.campaign`): `recommend(batch_size, pending)` trains the models on the
cards (the normal pipeline, stages clean..audit, per target) and returns the next batch as raw data cards with
why each was chosen; `add_measurements(cards)` takes measured cards (partial labels allowed; a `failed` column
or no label at all records a failed experiment); `status()`.

A batch mixes exploitation and exploration (`explore`, 0..1, the share of the batch that explores):
- exploit: the design stage's own ranking (chance to land within tolerance under σ, then cost), only recipes
  with a real chance (in domain, P(all within tolerance) >= design.min_p_hit); a slot none can take explores
  instead, and the batch's `why` and the log say so;
- explore: recipes that could still hit (every target within 2σ of its prediction) and where the models know
  least (largest Σ σ/tolerance: large ensemble spread, thin domain, formula and reference disagreeing); one
  exploration slot re-tests the tested card nearest the targets that lacks a target's label (a label gap).
No two recipes of a batch, and no recipe and a pending experiment, are closer than `diversity` (RMS distance
over the design variables in units of their spread among the candidates, a different casting or anneal type
counting as 2 spreads), and no recipe comes within REPEAT x `diversity` of a card already tested (start cards
and measurements): that is the same recipe again, however its numbers are written. Every recipe obeys the design
stage's constraints (chem window, Σ = 100, adequate schedules, cost, family, casting).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CampaignConfig
from .errors import AlloyHydraError
from .io import read_cards

log = logging.getLogger("alloy_hydra.campaign")
# a candidate within REPEAT x diversity of a tested card (design variables, _standardise) is that recipe again
REPEAT = 0.25

FORMAT = "alloy_hydra.campaign/1"


class CampaignError(AlloyHydraError):
    pass


@dataclass
class _Pool:
    """The design stage's feasible recipes (in its ranking's order), their design variables standardised (Z),
    which are blocked (near a pending experiment or a tested card), and how far apart a batch's recipes stay."""

    table: pd.DataFrame
    Z: np.ndarray
    blocked: np.ndarray
    radius: float


@dataclass
class _Batch:
    """A batch being chosen: candidate indices, why each was chosen, why exploit slots went to exploration."""

    picks: list
    why: list
    note: str | None = None
    gap: tuple | None = None  # (raw card, why): a tested card re-tested for the label it lacks
    n_repeats: int = 0  # candidates skipped as repeats of tested cards


@dataclass
class Goal:
    """What a campaign designs for: target values (name -> value, e.g. {"YS": 260}), each within a tolerance
    (default design.tolerance), minimums a recipe must reach, and the recipe constraints."""

    targets: dict
    tolerance: dict | None = None
    minimum: dict | None = None
    family: str | None = None
    casting: str | None = None
    max_cost: float | None = None


JOURNAL, MARKER, LOCK = ".commit", "COMMITTED", ".lock"
STATE_FILES = ("cards.csv", "campaign.json")  # in the order a step replaces them


def _pause(announce: str | None = None) -> None:
    """Fault injection for the kill test: ALLOY_HYDRA_COMMIT_PAUSE seconds between the steps of a commit (and a
    line on stderr where one starts), so kills land inside it. Unset in use."""
    pause = float(os.environ.get("ALLOY_HYDRA_COMMIT_PAUSE", "0") or 0)
    if pause > 0:
        if announce:
            print(announce, file=sys.stderr, flush=True)
        time.sleep(pause)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durable(path: Path, text: str) -> None:
    """The file's bytes on disk before it gets its name (temp file + fsync + rename + fsync of the folder)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recover(path: Path) -> None:
    """Finish a committed step (redo) or drop an uncommitted one, left by a command that was killed."""
    journal = Path(path) / JOURNAL
    if not journal.is_dir():
        return
    if (journal / MARKER).exists():
        for name in STATE_FILES:
            if (journal / name).exists():
                os.replace(journal / name, Path(path) / name)
                _pause()
        _fsync_dir(Path(path))
    shutil.rmtree(journal, ignore_errors=True)


@contextmanager
def locked(path):
    """One campaign command at a time: a second one waits up to 10 s, then stops with a clear error."""
    from filelock import FileLock, Timeout

    Path(path).mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(Path(path) / LOCK))
    try:
        lock.acquire(timeout=10)
    except Timeout:
        raise CampaignError(
            f"{path}: another campaign command is running ({LOCK} is held); try again when it ends"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _truthy(v) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "y", "failed")


class Campaign:
    def __init__(self, path, state: dict):
        self.path = Path(path)
        self.state = state

    # --- creating, saving, loading ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path, cards, goal: Goal, settings: CampaignConfig | None = None) -> Campaign:
        """A new campaign in `path` from start cards (a file or a table), a goal and how batches are made."""
        from .config import compose

        settings = settings or CampaignConfig()
        path, targets = Path(path), goal.targets
        if (path / "campaign.json").exists():
            raise CampaignError(f"{path} already holds a campaign (campaign.json)")
        if not 0 <= settings.explore <= 1:
            raise CampaignError(f"explore must be between 0 and 1, not {settings.explore}")
        cfg = compose(list(settings.overrides))
        unknown = [t for t in targets if t not in cfg.design.targets]
        if unknown:
            raise CampaignError(f"unknown target {unknown[0]!r}; properties: {', '.join(cfg.design.targets)}")
        tol = {t: float((goal.tolerance or {}).get(t, cfg.design.tolerance[t])) for t in targets}
        table = cards if isinstance(cards, pd.DataFrame) else read_cards(cards, delimiter=cfg.data.delimiter)
        table = table.drop(columns=["source_row"], errors="ignore")
        _check_start_cards(table, cfg, targets, "the cards" if isinstance(cards, pd.DataFrame) else str(cards))
        constraints = {"family": goal.family, "casting": goal.casting, "max_cost": goal.max_cost}
        state = {
            "format": FORMAT,
            "targets": {t: float(v) for t, v in targets.items()},
            "tolerance": tol,
            "constraints": {**constraints, "min": dict(goal.minimum or {})},
            "explore": float(settings.explore),
            "diversity": float(settings.diversity),
            "overrides": list(settings.overrides),
            "seed": int(settings.seed),
            "registry": settings.registry,
            "round": 0,
            "n_initial": int(len(table)),
            "pending": [],
            "failed": [],
            "history": [],
        }
        camp = cls(path, state)
        with locked(path):
            if (path / "campaign.json").exists():
                raise CampaignError(f"{path} already holds a campaign (campaign.json)")
            camp.commit(table)
        return camp

    @classmethod
    def load(cls, path) -> Campaign:
        path = Path(path)
        if (path / JOURNAL).is_dir():
            with locked(path):
                recover(path)
        return cls(path, _read_state(path))

    def _refresh(self) -> None:
        """Under the lock: finish or drop a killed command's step and read the state as it is on disk now (another
        command may have changed it since this object was loaded)."""
        recover(self.path)
        self.state = _read_state(self.path)

    def commit(self, cards: pd.DataFrame | None = None) -> None:
        """The state (and, when given, the cards) as one step: written to the journal, marked committed, then
        moved into place (module doc). Callers hold the lock (`locked`)."""
        self.path.mkdir(parents=True, exist_ok=True)
        journal = self.path / JOURNAL
        recover(self.path)
        _pause("commit: start")
        journal.mkdir()
        if cards is not None:
            text = cards.to_csv(index=False)
            _write_durable(journal / "cards.csv", text)
            _pause()
        else:
            text = (self.path / "cards.csv").read_text(encoding="utf-8")
        self.state["cards_sha256"] = _sha256(text)
        _write_durable(journal / "campaign.json", json.dumps(self.state, indent=2, sort_keys=True) + "\n")
        _pause()
        _write_durable(journal / MARKER, "")  # the step is durable from here on
        _pause()
        recover(self.path)

    def save(self) -> None:
        """The state as one step (cards unchanged)."""
        with locked(self.path):
            self.commit()

    # --- config and models ------------------------------------------------------------------------------------
    def config(self, target: str | None = None, extra=()):
        from .config import compose

        s = self.state
        c = s["constraints"]
        over = [*s["overrides"], f"data.path={(self.path / 'cards.csv').resolve()}", f"seed={s['seed']}"]
        if target:
            over.append(f"target={target}")
        over += [f"design.targets.{t}={v}" for t, v in s["targets"].items()]
        over += [f"design.tolerance.{t}={v}" for t, v in s["tolerance"].items()]
        over += [f"design.min.{t}={v}" for t, v in c["min"].items()]
        for key in ("family", "casting", "max_cost"):
            if c[key] is not None:
                over.append(f"design.{key}={c[key]}")
        return compose([*over, *extra])

    def train(self) -> tuple[dict, object, pd.DataFrame]:
        """Per target, the normal pipeline (clean, split, train, audit) on all the campaign's cards (no holdout:
        every experiment it paid for trains, grouped CV validates) into rounds/rK/<target>; publishes each model
        to the registry when the campaign has one."""
        from . import stages
        from .model import Model

        k = self.state["round"] + 1
        models, cfg, master = {}, None, None
        for t in self.state["targets"]:
            run_dir = self.path / "rounds" / f"r{k}" / t
            if not (run_dir / "model.json").exists():
                cfg_t = self.config(t, ["stages=[clean,split,train,audit]", "split.holdout_fraction=0"])
                stages.run(cfg_t, run_dir)
                _save_run_config(cfg_t, run_dir)
            models[t] = Model.load(run_dir / "model.json")
            if master is None:
                cfg = self.config(t)
                master = pd.read_csv(run_dir / "BASE_MASTER.csv", dtype={c: str for c in cfg.data.id_columns})
        if self.state["registry"]:
            from .registry import Registry

            reg = Registry(self.state["registry"])
            for t in self.state["targets"]:
                reg.publish(self.path / "rounds" / f"r{k}" / t)
        return models, cfg, master

    # --- the verbs --------------------------------------------------------------------------------------------
    def recommend(self, batch_size: int = 5, pending=None) -> pd.DataFrame:
        """The next batch as raw data cards (ids c<round>-<n>), with `why` and the predictions beside them."""
        with locked(self.path):
            self._refresh()
            return self._recommend(batch_size, pending)

    def _recommend(self, batch_size: int, pending) -> pd.DataFrame:
        from .stages.design import recommend

        if batch_size < 1:
            raise CampaignError("batch_size must be at least 1")
        models, cfg, master = self.train()
        cfg = _with_domain(cfg, "penalise")  # exploration may go where the domain is thin; exploitation stays in
        out = recommend(cfg, models, cfg.data, cfg.cleaning, master, progress=lambda *_: None)
        pool = out.candidates.reset_index(drop=True)
        if not len(pool):
            raise CampaignError(f"no feasible recipe under the campaign's constraints {self.state['constraints']}")
        schema = out.space.schema
        cols = [*schema.elements, *[c for c in schema.numeric if c in pool]]
        cats = list(
            dict.fromkeys(
                c
                for c in [*cfg.data.categoricals, *pool.columns]
                if c in pool and (c in cfg.data.categoricals or c.endswith("_type"))
            )
        )
        Z = _standardise(pool, cols, cats=cats)
        radius = self.state["diversity"]
        taken = list(self.state["pending"]) + [c for c in (pending or [])]
        blocked = _near_pending(pool, taken, cols, Z, cfg, radius, cats)
        # a recipe the cards already hold (measured by the campaign or among the start cards) is not proposed
        # again: within REPEAT x diversity of a tested card in the design variables is the same recipe
        repeats = _near_cards(pool, master, cols, Z, REPEAT * radius, cats)
        cands = _Pool(pool, Z, blocked | repeats, radius)
        n_exploit = int(round(batch_size * (1 - self.state["explore"])))
        batch = _exploit(cands, n_exploit, cfg, self.state["round"] + 1)
        batch.n_repeats = int(repeats.sum())
        spare = n_exploit - len(batch.picks)
        if self.state.get("gaps", True) and batch_size - len(batch.picks) >= 1:
            batch.gap = self._label_gap(master, cfg, taken)
        room = batch_size - (1 if batch.gap is not None else 0)
        _explore(cands, self.state["tolerance"], room, batch, spare)
        if len(batch.picks) < room:
            log.warning(
                "campaign: only %d recipes: the rest of the space is within reach of tested or pending recipes",
                len(batch.picks),
            )
        return self._write_batch(pool, batch, cfg, master)

    def _write_batch(self, pool: pd.DataFrame, batch: _Batch, cfg, master: pd.DataFrame) -> pd.DataFrame:
        """The round's batch as data cards (rounds/r<k>/batch.csv), pending in the state with why each was chosen
        and what was predicted, committed."""
        from . import design as design_mod

        picks, why, gap = batch.picks, batch.why, batch.gap
        k = self.state["round"] + 1
        chosen = pool.loc[picks].assign(rank=np.arange(1, len(picks) + 1))
        cards = design_mod.as_raw_cards(chosen, cfg.data, prefix=f"c{k}")
        cards["why"] = why
        for t in self.state["targets"]:
            cards[f"predicted_{t}"] = [f"{p:.1f} ± {s:.1f}" for p, s in zip(chosen[f"{t}_pred"], chosen[f"{t}_std"])]
        cards["in_domain"] = chosen["in_domain"].to_numpy()
        if gap is not None:  # a tested recipe re-tested for the label it lacks
            row, reason = gap
            row[cfg.data.id_columns[0]] = f"c{k}-{len(cards) + 1}"
            cards = pd.concat([cards, pd.DataFrame([{**row, "why": reason}])], ignore_index=True)
            why.append(reason)
        (self.path / "rounds" / f"r{k}").mkdir(parents=True, exist_ok=True)
        cards.to_csv(self.path / "rounds" / f"r{k}" / "batch.csv", index=False)
        id_col = cfg.data.id_columns[0]
        extra = {"why", "in_domain", *(f"predicted_{t}" for t in self.state["targets"])}
        self.state["pending"] += [
            {c: str(v) for c, v in row.items() if c not in extra and not pd.isna(v)} for row in cards.to_dict("records")
        ]
        self.state["round"] = k
        predicted = [{t: float(chosen[f"{t}_pred"].iat[j]) for t in self.state["targets"]} for j in range(len(chosen))]
        predicted += [{}] * (gap is not None)  # a re-test: its own card says what was measured
        recommended = [{"id": str(cid), "why": w, "predicted": p} for cid, w, p in zip(cards[id_col], why, predicted)]
        self.state["history"].append(
            {
                "round": k,
                "recommended": recommended,
                "n_cards": int(len(master)),
                "n_feasible": int(len(pool)),
                "n_repeats_skipped": batch.n_repeats,
                "note": batch.note,
            }
        )
        self.commit()
        return cards

    def _label_gap(self, master: pd.DataFrame, cfg, pending: list):
        """A tested card that lacks a label of a campaign target while its other labels put it nearest the targets
        (the label gaps of labels_needed.csv): re-testing it costs no casting and tells about the target region.
        Returns (its raw card with the targets blank, why) or None."""
        targets, tol = self.state["targets"], self.state["tolerance"]
        have = master[[t for t in targets if t in master]]
        lacking = have.isna().any(axis=1) & have.notna().any(axis=1)
        casting = self.state["constraints"].get("casting")
        if casting and "casting" in master:  # a re-test is an experiment of this campaign: its route too
            lacking &= master["casting"].astype(str).str.upper() == str(casting).upper()
        if not lacking.any():
            return None
        dist = pd.concat([(have[t] - v).abs() / tol[t] for t, v in targets.items() if t in have], axis=1).max(axis=1)
        raw = pd.read_csv(self.path / "cards.csv", dtype=str, keep_default_na=False)
        id_col = cfg.data.id_columns[0]
        retests = {p.get("retest_of") for p in pending}
        for i in dist[lacking].sort_values(kind="stable").index:
            r = int(master.at[i, "source_row"]) - 2  # source_row: the row in cards.csv, header = row 1
            if not 0 <= r < len(raw) or str(r) in retests:
                continue
            row = raw.iloc[r].to_dict()
            missing = [t for t in targets if t in have and pd.isna(have.at[i, t])]
            for t in targets:
                row[cfg.data.targets[t]] = ""
            known = ", ".join(t for t in targets if t in have and pd.notna(have.at[i, t]))
            why = (
                f"label gap: re-test card {row[id_col]} (row {r + 2} of cards.csv) for {', '.join(missing)}; "
                f"its {known} put it {dist[i]:.1f} tolerances from the targets"
            )
            row["retest_of"] = str(r)
            return row, why
        return None

    def add_measurements(self, cards, allow_new: bool = False) -> dict:
        """Measured cards (DataFrame or CSV path, the lab's schema): labelled ones join cards.csv, failed ones
        (a truthy `failed` column, or no target label) are recorded; matching pending experiments are closed."""
        with locked(self.path):
            self._refresh()
            return self._add(cards, allow_new)

    def _add(self, cards, allow_new: bool = False) -> dict:
        cfg = self.config()
        source = "the measurements" if isinstance(cards, pd.DataFrame) else str(cards)
        table = cards if isinstance(cards, pd.DataFrame) else read_cards(cards, delimiter=cfg.data.delimiter)
        table = table.drop(columns=["source_row"], errors="ignore").astype(str).reset_index(drop=True)
        id_col = cfg.data.id_columns[0]
        labels = [cfg.data.targets[t] for t in self.state["targets"] if t in cfg.data.targets]
        failed = table["failed"].map(_truthy) if "failed" in table else pd.Series(False, index=table.index)
        unlabelled = ~table[[c for c in labels if c in table]].replace("", np.nan).notna().any(axis=1)
        bad = failed | unlabelled
        known = pd.read_csv(self.path / "cards.csv", dtype=str, keep_default_na=False)
        self._check_measurements(table, known, ~bad, cfg, source, allow_new)
        good = table.loc[~bad, [c for c in known.columns if c in table]]
        merged = pd.concat([known, good], ignore_index=True)
        closed = set(table[id_col]) if id_col in table else set()
        self.state["pending"] = [p for p in self.state["pending"] if p.get(id_col) not in closed]
        for _, row in table[bad].iterrows():
            reason = "failed" if _truthy(row.get("failed", "")) else "no label"
            self.state["failed"].append({"id": row.get(id_col, ""), "round": self.state["round"], "reason": reason})
        added = {
            "measured": int((~bad).sum()),
            "failed": int(bad.sum()),
            "closed": sorted(closed & {str(i) for i in closed}),
        }
        if self.state["history"]:
            self.state["history"][-1].setdefault("measurements", []).append(added)
        self.commit(merged)
        return added

    def _check_measurements(self, table, known, measured, cfg, source: str, allow_new: bool) -> None:
        """Every problem of a measurement file at once, before anything is written (file, row, column, value):
        the id column, ids that are duplicated, not pending (unless allow_new) or already measured, target
        labels that are not numbers, and the cleaning's verdict on the measured cards (units, numbers, window)."""
        from .clean import clean_for_prediction

        id_col = cfg.data.id_columns[0]
        if id_col not in table:
            raise CampaignError(f"{source}: no {id_col!r} column: each measured card must name its experiment")
        columns = [cfg.data.targets[t] for t in self.state["targets"] if t in cfg.data.targets]
        if columns and not any(c in table for c in columns):  # a misspelt label column would read as "all failed"
            raise CampaignError(
                f"{source}: none of the campaign's label columns ({', '.join(map(repr, columns))}) is in the file "
                f"(it has {', '.join(map(repr, table.columns))}); a failed experiment is marked in a `failed` column"
            )
        problems = []
        ids = table[id_col].str.strip()
        pending = {str(p.get(id_col)) for p in self.state["pending"]}
        already = set(known[id_col].astype(str)) if id_col in known else set()
        for i, v in ids.items():
            where = f"row {i + 2}, column {id_col!r}, value {v!r}"
            if v == "":
                problems.append(f"{where}: no id")
            elif (ids == v).sum() > 1:
                problems.append(f"{where}: the id appears more than once in the file")
            elif v in already:
                problems.append(f"{where}: this experiment is already in the campaign's cards")
            elif v not in pending and not allow_new:
                problems.append(f"{where}: not a pending experiment (add --allow-new for unplanned cards)")
        for t in self.state["targets"]:
            col = cfg.data.targets.get(t)
            if col in table:
                cells = table.loc[measured, col].str.strip()
                for i, v in cells[(cells != "") & pd.to_numeric(cells, errors="coerce").isna()].items():
                    problems.append(f"row {i + 2}, column {col!r}, value {v!r}: {t} must be a number")
        if not problems and measured.any():
            raw = table[measured].assign(source_row=np.flatnonzero(measured.to_numpy()) + 2)
            try:
                result = clean_for_prediction(raw, cfg, source=source)
            except AlloyHydraError as err:
                problems.append(str(err))
            else:
                for _, r in result.rejects.iterrows():
                    problems.append(f"row {int(r['source_row'])}: rejected by the cleaning: {r.get('reason', '')}")
        if problems:
            shown = "\n  ".join(problems[:20]) + (
                f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            )
            raise CampaignError(f"{source}: nothing was added; fix these and add the file again:\n  {shown}")

    def status(self) -> dict:
        """Round, cards, pending and failed experiments, and how close the measured campaign cards came."""
        cfg = self.config()
        cards = pd.read_csv(self.path / "cards.csv", dtype=str, keep_default_na=False)
        new = cards.iloc[self.state["n_initial"] :]
        dist = measured_distance(new, cfg, self.state["targets"], self.state["tolerance"])
        return {
            "round": self.state["round"],
            "cards": int(len(cards)),
            "measured_by_campaign": int(len(new)),
            "pending": [p.get(cfg.data.id_columns[0]) for p in self.state["pending"]],
            "failed": len(self.state["failed"]),
            "hits": int((dist <= 1).sum()),
            "best_distance": float(dist.min()) if len(dist) else None,
            "targets": self.state["targets"],
            "explore": self.state["explore"],
        }


def _check_start_cards(table: pd.DataFrame, cfg, targets: dict, source: str) -> None:
    """A campaign starts only from cards the pipeline can use: they clean (run.py's cleaning: schema, units,
    numbers) and some of them carry each target's label. Checked before anything is written."""
    from .clean import clean_for_prediction

    raw = table.astype(str).assign(source_row=np.arange(2, len(table) + 2))
    try:
        kept = clean_for_prediction(raw, cfg, source=source).master
    except AlloyHydraError as err:
        raise CampaignError(f"{source}: cannot start a campaign from these cards: {err}") from None
    if not len(kept):
        raise CampaignError(f"{source}: the cleaning keeps none of the {len(table)} cards (see its rejects)")
    unlabelled = [t for t in targets if t not in kept or not kept[t].notna().any()]
    if unlabelled:
        raise CampaignError(
            f"{source}: no card carries a label of {', '.join(unlabelled)} "
            f"(column {', '.join(repr(cfg.data.targets.get(t, t)) for t in unlabelled)})"
        )


def _read_state(path: Path) -> dict:
    """campaign.json, checked: JSON, this format, and cards.csv the file it recorded."""
    f = path / "campaign.json"
    if not f.exists():
        raise CampaignError(f"{path} is not a campaign (no campaign.json)")
    try:
        state = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CampaignError(f"{f} is damaged (not JSON: {err}); restore it from a backup") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CampaignError(f"{f} is not an alloy_hydra campaign")
    cards = path / "cards.csv"
    if not cards.exists():
        raise CampaignError(f"{cards} is missing; the campaign's cards are gone (restore the file)")
    want = state.get("cards_sha256")
    if want is not None and _sha256(cards.read_text(encoding="utf-8")) != want:
        raise CampaignError(
            f"{cards} is not the file campaign.json recorded (sha256 differs): it was changed outside the "
            f"campaign or damaged; restore it (commands change it only through `add`)"
        )
    return state


def measured_distance(cards: pd.DataFrame, cfg, targets: dict, tolerance: dict) -> np.ndarray:
    """Per measured card, the worst target's |measured - target| / tolerance (<= 1: a hit on every target)."""
    out = []
    for t, v in targets.items():
        col = cfg.data.targets.get(t)
        vals = pd.to_numeric(cards[col], errors="coerce") if col in cards else pd.Series(np.nan, index=cards.index)
        out.append(np.abs(vals.to_numpy(float) - v) / tolerance[t])
    if not out:
        return np.array([])
    d = np.max(np.vstack(out), axis=0)
    return d[np.isfinite(d)]


def _with_domain(cfg, domain: str):
    import dataclasses

    return dataclasses.replace(cfg, design=dataclasses.replace(cfg.design, domain=domain, top=10_000))


def _standardise(pool: pd.DataFrame, cols, table: pd.DataFrame | None = None, cats=()) -> np.ndarray:
    """`table` (default: the pool itself) over the design variables: `cols`, each in units of its spread among
    the pool's recipes, and per categorical in `cats` (casting, anneal type) one-hot columns scaled so that a
    different level is as far as 2 spreads of a number: two recipes on different routes are never "the same"."""
    A = pool[cols].to_numpy(float)
    sd = A.std(axis=0)
    source = pool if table is None else table
    T = A if table is None else source.reindex(columns=cols).to_numpy(float)
    parts = [np.nan_to_num((T - A.mean(axis=0)) / np.where(sd > 0, sd, 1.0))]
    for c in cats:
        levels = sorted(pool[c].astype(str).unique())
        values = source[c].astype(str).to_numpy() if c in source else np.full(len(source), "")
        parts.append(np.column_stack([(values == lv) * np.sqrt(2.0) for lv in levels]))
    return np.hstack(parts)


def _gap(Z: np.ndarray, i: int, picks: list) -> float:
    """RMS distance of candidate i to the nearest pick (infinite with none)."""
    return float(np.sqrt(np.mean((Z[picks] - Z[i]) ** 2, axis=1)).min()) if picks else np.inf


def _exploit(cands: _Pool, n_exploit: int, cfg, round_no: int) -> _Batch:
    """The exploit slots, and a note on the slots left to exploration (None when all are filled)."""
    pool, blocked = cands.table, cands.blocked
    batch = _Batch([], [])
    # exploit: the design ranking (p_hit first, then cost and simplicity), only recipes with a real chance —
    # in domain and P(all within tolerance) >= design.min_p_hit; a slot none can fill explores instead
    real = (pool["p_hit"] >= cfg.design.min_p_hit).to_numpy() & pool["in_domain"].astype(bool).to_numpy()
    for i in pool.index[~blocked & real]:  # the pool comes in the design ranking's order
        if len(batch.picks) >= n_exploit:
            break
        if _far(cands.Z, i, batch.picks, cands.radius):
            batch.picks.append(i)
            batch.why.append(
                f"exploit: rank {int(pool.at[i, 'rank'])}, P(all within tolerance) {pool.at[i, 'p_hit']:.2f}"
            )
    if len(batch.picks) < n_exploit:
        best = pool.loc[~blocked & pool["in_domain"].astype(bool).to_numpy(), "p_hit"]
        best_text = f"best {best.max():.2f}" if len(best) else "none in domain"
        batch.note = (
            f"{n_exploit - len(batch.picks)} of {n_exploit} exploit slots spent on learning: no other recipe in "
            f"domain has P(all within tolerance) >= {cfg.design.min_p_hit:g} ({best_text})"
        )
        log.warning("campaign round %d: %s", round_no, batch.note)
    return batch


def _explore(cands: _Pool, tol: dict, room: int, batch: _Batch, spare: int) -> None:
    """The explore slots, appended to the batch up to `room`: recipes that could hit within 2σ where the models
    know least, then any; a small space is filled with the farthest remaining. `spare`: exploit slots no recipe
    with a real chance could take (their reason, the batch's note, is said on the recipes that take them)."""
    pool, blocked, Z, radius = cands.table, cands.blocked, cands.Z, cands.radius
    picks, why = batch.picks, batch.why
    unc = sum(pool[f"{t}_std"] / tol[t] for t in tol) / len(tol)
    could = np.all([(pool[f"{t}_dev"].abs() - 2 * pool[f"{t}_std"]) <= tol[t] for t in tol], axis=0)
    order = list(pool.index[could & ~blocked][np.argsort(-unc[could & ~blocked].to_numpy(), kind="stable")])
    order += [i for i in pool.index[~could & ~blocked][np.argsort(-unc[~could & ~blocked].to_numpy(), kind="stable")]]
    for i in order:
        if len(picks) >= room:
            break
        if i not in picks and _far(Z, i, picks, radius):
            picks.append(i)
            kind = "could hit within 2σ" if could[i] else "no candidate left that could hit"
            text = f"explore: {kind}; mean σ/tolerance {unc[i]:.2f} (where the models know least)"
            if spare > 0:
                text += f" — in place of an exploit slot ({batch.note})"
                spare -= 1
            why.append(text)
    if len(picks) < room:  # a small space: fill with the farthest remaining from the batch (never a repeat)
        for _ in range(room - len(picks)):
            rest = [i for i in pool.index[~blocked] if i not in picks]
            if not rest:
                break
            d = [_gap(Z, i, picks) for i in rest]
            i = rest[int(np.argmax(d))]
            picks.append(i)
            why.append(
                f"fill: the space holds no more recipes {radius:g} apart; this one is {np.max(d):.2f} from the rest"
            )


def _far(Z: np.ndarray, i: int, picks: list, radius: float) -> bool:
    return _gap(Z, i, picks) >= radius


def _near_pending(pool, pending: list, cols, Z, cfg, radius, cats=()) -> np.ndarray:
    """Candidates within `radius` of a pending experiment (pending: raw cards, as recommended)."""
    blocked = np.zeros(len(pool), bool)
    if not pending:
        return blocked
    from .clean import clean_for_prediction

    raw = pd.DataFrame(pending).astype(str)
    raw.insert(0, "source_row", np.arange(2, len(raw) + 2))
    kept = clean_for_prediction(raw, cfg, source="pending").master
    return _near_cards(pool, kept, cols, Z, radius, cats)


def _near_cards(pool, cards: pd.DataFrame, cols, Z, radius, cats=()) -> np.ndarray:
    """Candidates within `radius` (RMS over the design variables, _standardise) of any of the cleaned `cards`."""
    out = np.zeros(len(pool), bool)
    if not len(cards):
        return out
    P = _standardise(pool, cols, cards, cats)
    for start in range(0, len(P), 512):  # pool x cards distances in blocks: a few thousand x a few hundred
        block = P[start : start + 512]
        d = np.sqrt(((Z[:, None, :] - block[None, :, :]) ** 2).mean(axis=2))
        out |= (d < radius).any(axis=1)
    return out


def _save_run_config(cfg, run_dir: Path) -> None:
    """A run dir made in-process gets the .hydra/config.yaml a run.py run has (predict, registry, monitor read it)."""
    from omegaconf import OmegaConf

    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.structured(cfg), run_dir / ".hydra" / "config.yaml")


if __name__ == "__main__":  # python -m alloy_hydra.campaign: the commands live in cli/campaign.py
    import sys

    from alloy_hydra.cli.campaign import main

    sys.exit(main())
