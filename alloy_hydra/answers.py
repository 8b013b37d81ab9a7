"""The assistant's answers as every front end shows and logs them: the service's JSON, the page, and the query log
(SQLite, <registry>/queries.sqlite) that the monitor joins measured outcomes to. One shape, one log, whoever asked.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

DESIGN, PREDICT = "/design", "/predict"  # the log's endpoint names (the page logs under the service's)


# --- the answers: the service's response models (/docs), the page's and the log's shape -------------------------
class RecipePrediction(BaseModel):
    model_config = ConfigDict(extra="allow")
    target: float | None = Field(None, description="the requested value")
    pred: float | None = None
    std: float | None = Field(None, description="1 sigma: the expected error of this recipe")
    dev: float | None = Field(None, description="pred - target")
    within_tol: bool | None = None
    p_hit: float | None = Field(None, description="chance to land within tolerance of this target")
    truth: float | None = Field(None, description="demo data only: the simulator's value")
    unit: str


class Candidate(BaseModel):
    rank: int
    p_hit: float | None = Field(description="chance to land within tolerance of every target together")
    score: float | None
    composition_wt_pct: dict[str, float | None]
    process: dict[str, Any]
    card: dict[str, Any] = Field(description="the recipe as a raw data card in the registry's schema")
    predictions: dict[str, RecipePrediction]
    cost_index: float | None
    n_additions: int | None
    in_domain: bool | None
    domain_ratio: float | None
    nearest_card: str | None
    note: str | None


class DesignAnswer(BaseModel):
    query_id: str = Field(description="the key of this answer in the query log")
    versions: dict[str, str]
    targets: dict[str, float]
    n_feasible: int
    reason: str | None = Field(description="why no recipe is expected to hit (then candidates is empty)")
    candidates: list[Candidate]
    closest: list[Candidate] = Field(description="when unreachable: the closest recipes, not expected to hit")


class CardPrediction(BaseModel):
    pred: float | None = None
    std: float | None = Field(None, description="1 sigma")
    in_domain: bool | None = None
    domain_distance: float | None = None
    domain_reason: str | None = Field(None, description="why the card is out of domain")
    unit: str


class PredictResult(BaseModel):
    card: int = Field(description="the card's position in the request, from 0")
    predictions: dict[str, CardPrediction]
    rejected_reason: str | None = Field(description="why the card could not be scored ('' = scored)")


class PredictAnswer(BaseModel):
    query_id: str
    versions: dict[str, str]
    units: dict[str, str]
    n_cards: int
    results: list[PredictResult]


# --- what the query log keeps of a design answer (the monitor reads it back through these) ---------------------
class RecordedCandidate(BaseModel):
    rank: int
    p_hit: float | None
    in_domain: bool | None
    predictions: dict[str, RecipePrediction]
    nearest_card: str | None


class DesignRecord(BaseModel):
    query_id: str
    targets: dict[str, float]
    n_feasible: int
    reason: str | None
    candidates: list[RecordedCandidate]


def strict(value):
    """`value` with every non-finite float as None: the log and the answers are strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def bounded(value, limit: int) -> str:
    """`value` as strict JSON, or beyond `limit` bytes its digest (sha256, size and the first 200 characters):
    a 5 MB request must not grow the log by 5 MB, and the digest still tells two requests apart."""
    text = json.dumps(strict(value), default=str, allow_nan=False)
    raw = text.encode()
    if len(raw) <= limit:
        return text
    digest = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw), "head": text[:200], "truncated": True}
    return json.dumps(digest)


class QueryLog:
    """One row per request the log keeps (every design and prediction, and every refused request): query id, time,
    endpoint, status, inputs, model versions, outputs (strict JSON, each at most `max_bytes`, else a digest).
    Rows older than `retention_days` (None = kept) are deleted when the log opens and every 100 rows."""

    def __init__(self, path, max_bytes: int = 16_384, retention_days: float | None = 90):
        self.path = Path(path)
        self.max_bytes, self.retention_days = int(max_bytes), retention_days
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._added = 0
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS queries (id TEXT PRIMARY KEY, time TEXT, endpoint TEXT, status INTEGER,"
                " inputs TEXT, versions TEXT, outputs TEXT)"
            )
        self.prune()

    def _connect(self):
        return sqlite3.connect(self.path, timeout=30)

    def prune(self) -> int:
        """Delete the rows older than the retention; how many went."""
        if self.retention_days is None:
            return 0
        cutoff = datetime.now(timezone.utc) - timedelta(days=float(self.retention_days))
        with self._lock, self._connect() as db:
            cur = db.execute("DELETE FROM queries WHERE time < ?", (cutoff.isoformat(timespec="milliseconds"),))
            return cur.rowcount

    def add(self, qid: str, endpoint: str, status: int, inputs, versions, outputs) -> None:
        row = (
            qid,
            datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            endpoint,
            int(status),
            bounded(inputs, self.max_bytes),
            bounded(versions, self.max_bytes),
            bounded(outputs, self.max_bytes),
        )
        with self._lock, self._connect() as db:
            db.execute("INSERT INTO queries VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            self._added += 1
            due = self._added % 100 == 0
        if due:
            self.prune()

    def rows(self) -> list[dict]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM queries ORDER BY time")]


def records(df: pd.DataFrame) -> list[dict]:
    return json.loads(df.to_json(orient="records", double_precision=6)) if len(df) else []


def per_target(row: dict, targets, fields) -> dict:
    """{target: {field: row[f"{target}_{field}"]}} for the fields the row has (truth: demo data only)."""
    return {t: {f: row[f"{t}_{f}"] for f in fields if f"{t}_{f}" in row} for t in targets}


def candidates(result: dict) -> list[dict]:
    """The ranked recipes of Assistant.design: composition, process, the recipe as a raw data card, predictions ±
    σ with deviation and chance within tolerance per target, cost, domain, nearest card, note."""
    top = result["candidates"]
    data = result["data"]
    process_cols = [
        c
        for c in top.columns
        if c in data.categoricals or c in data.numeric or c.endswith("_schedule") or c.endswith("_schedule_readable")
    ] + [c for c in top.columns if c.endswith("_type")]
    out = []
    cards = records(result["recommended_cards"])
    for i, r in enumerate(records(top)):
        preds = per_target(r, result["targets"], ("target", "pred", "std", "dev", "within_tol", "p_hit", "truth"))
        for t, p in preds.items():
            p["unit"] = result["units"][t]
        out.append(
            {
                "rank": r["rank"],
                "p_hit": r["p_hit"],
                "score": r["score"],
                "composition_wt_pct": {el: r[el] for el in result["elements"]},
                "process": {c: r[c] for c in process_cols},
                "card": cards[i] if i < len(cards) else {},
                "predictions": preds,
                "cost_index": r["cost_index"],
                "n_additions": r["n_additions"],
                "in_domain": r["in_domain"],
                "domain_ratio": r["domain_ratio"],
                "nearest_card": r["nearest_card"],
                "note": r["note"],
            }
        )
    return out


def design(result: dict, qid: str) -> dict:
    """Assistant.design's result as the answer: with no real chance of a hit, no pretend ranking — the candidates
    are empty and the closest three are shown as such."""
    found = candidates(result)
    reachable = result["reason"] is None
    return {
        "query_id": qid,
        "versions": result["versions"],
        "targets": result["targets"],
        "n_feasible": result["n_feasible"],
        "reason": result["reason"],
        "candidates": found if reachable else [],
        "closest": [] if reachable else found[:3],
    }


def refusal(field: str, message: str, qid: str) -> dict:
    """A refused request as the service answers it (its HTTP detail) and every front end logs it (under "error"):
    the input at fault, why (without the server's paths: Assistant.public), the query id."""
    return {"field": field, "message": message, "query_id": qid}


def design_record(answer: dict) -> dict:
    """What the log keeps of a design answer: what the monitor joins measured outcomes to (rank, predictions,
    p_hit, domain), not the whole answer (20 recipes with their cards would be a digest beyond a row's limit).
    The answer is checked against DesignAnswer first, whoever asked (the service's response model; the page)."""
    DesignAnswer.model_validate(answer)
    kept = [k for k in DesignRecord.model_fields if k != "candidates"]
    return {
        **{k: answer[k] for k in kept},
        "candidates": [
            {k: c[k] for k in RecordedCandidate.model_fields} for c in answer["candidates"] or answer["closest"]
        ],
    }


def design_records(path, qids) -> dict[str, DesignRecord]:
    """The logged design answers of these query ids, read back (read only: no table made, nothing pruned). A row
    kept as its digest (beyond the log's limit) holds nothing to read and is left out; a row that is no design
    record is an error naming its query."""
    from pydantic import ValidationError

    from .errors import AlloyHydraError

    out = {}
    with sqlite3.connect(path) as db:
        for qid in qids:
            row = db.execute("SELECT outputs FROM queries WHERE id = ? AND endpoint = ?", (qid, DESIGN)).fetchone()
            if row is None:
                continue
            kept = json.loads(row[0])
            if isinstance(kept, dict) and kept.get("truncated") is True:
                continue
            try:
                out[qid] = DesignRecord.model_validate(kept)
            except ValidationError as err:
                raise AlloyHydraError(f"query log: the design answer {qid} is not a design record: {err}") from None
    return out


def predict(table: pd.DataFrame, used: dict, units: dict, qid: str) -> dict:
    """Assistant.predict's table as the answer: per card (its row in the request, from 0) the predictions ± σ with
    domain and reason per target, or why the card was rejected."""
    targets = list(used)
    out = []
    for r in records(table):
        preds = per_target(r, targets, ("pred", "std", "in_domain", "domain_distance", "domain_reason"))
        for t, p in preds.items():
            p["unit"] = units[t]
        out.append({"card": r["source_row"] - 1, "predictions": preds, "rejected_reason": r["rejected_reason"]})
    return {"query_id": qid, "versions": used, "units": units, "n_cards": len(out), "results": out}
