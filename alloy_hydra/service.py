"""The design assistant as an HTTP service (FastAPI), over a model registry.

    python -m alloy_hydra.service [--registry models] [--host 127.0.0.1] [--port 8000] [--workers N]

GET /health (and readiness), GET /models, POST /predict, POST /design; OpenAPI docs at /docs. Set
ALLOY_HYDRA_TOKEN to require `Authorization: Bearer <token>` on every endpoint but /health; without a token the
service listens on 127.0.0.1 only. Every /predict and /design is appended to the query log (SQLite,
<registry>/queries.sqlite) with its query id, inputs, model versions and outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import re
import secrets
import sqlite3
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

try:
    import fastapi  # noqa: F401
except ImportError:  # the base install has no web stack
    raise SystemExit("the service needs the app extras: pip install -e '.[app]'") from None
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .assistant import (
    REQUEST_TARGETS,
    TARGET_LIMITS,
    Assistant,
    DesignRequest,
    RequestError,
    ServiceFault,
    cards_from_records,
)
from .config import RegistryConfig
from .errors import AlloyHydraError
from .registry import RegistryDamaged
from .ui import TOKEN_ENV, is_loopback

log = logging.getLogger("alloy_hydra.service")
NAME = r"^[A-Za-z0-9_.-]{1,40}$"  # a version number or an alias: never a path


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- request bodies -----------------------------------------------------------------------------------------------
class DesignBody(BaseModel):
    """The action plan's question; every target is optional but at least one is needed."""

    model_config = ConfigDict(extra="forbid")
    target_YS: float | None = Field(
        None, gt=TARGET_LIMITS["YS"][0], le=TARGET_LIMITS["YS"][1], description="yield strength, MPa"
    )
    target_UTS: float | None = Field(
        None, gt=TARGET_LIMITS["UTS"][0], le=TARGET_LIMITS["UTS"][1], description="tensile strength, MPa"
    )
    target_EL: float | None = Field(
        None,
        gt=TARGET_LIMITS["FractureEL"][0],
        le=TARGET_LIMITS["FractureEL"][1],
        description="elongation at fracture, %",
    )
    alloy_family: str | None = Field(None, max_length=20, examples=["AA5xxx"])
    casting: str | None = Field(None, max_length=20, examples=["DC"])
    max_cost: float | None = Field(None, gt=0, le=1e4, description="cost index relative to pure Al")
    top: int | None = Field(None, ge=1, le=100, description="recipes returned (default 20)")
    min_YS: float | None = Field(None, ge=TARGET_LIMITS["YS"][0], le=TARGET_LIMITS["YS"][1])
    min_UTS: float | None = Field(None, ge=TARGET_LIMITS["UTS"][0], le=TARGET_LIMITS["UTS"][1])
    min_EL: float | None = Field(None, ge=TARGET_LIMITS["FractureEL"][0], le=TARGET_LIMITS["FractureEL"][1])
    fixed: dict[Annotated[str, Field(pattern=NAME)], Annotated[str, Field(max_length=40)]] = Field(
        default_factory=dict, max_length=10, description="other categoricals, e.g. {'recryst_type': 'batch'}"
    )
    pop_size: int | None = Field(None, ge=4, le=400, description="optimiser population (default 100)")
    n_gen: int | None = Field(None, ge=1, le=400, description="optimiser generations (default 200)")
    models: dict[Annotated[str, Field(pattern=NAME)], Annotated[str, Field(pattern=NAME)]] = Field(
        default_factory=dict, max_length=10, description="{target: version or alias}; default champion"
    )

    def request(self) -> DesignRequest:
        targets = {t: getattr(self, k) for k, t in REQUEST_TARGETS.items() if getattr(self, k) is not None}
        minimum = {t: getattr(self, "min_" + k[7:]) for k, t in REQUEST_TARGETS.items()}
        return DesignRequest(
            targets=targets,
            family=self.alloy_family,
            casting=self.casting,
            max_cost=self.max_cost,
            top=self.top,
            minimum={t: v for t, v in minimum.items() if v is not None},
            fixed=dict(self.fixed),
            pop_size=self.pop_size,
            n_gen=self.n_gen,
            models=dict(self.models),
        )


Cell = str | float | int | bool | None


class PredictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cards: list[dict[Annotated[str, Field(max_length=200)], Cell]] = Field(
        ..., min_length=1, description="data cards as records, in the registry's data schema (raw column names)"
    )
    targets: list[Annotated[str, Field(pattern=NAME)]] | None = Field(None, max_length=10)
    models: dict[Annotated[str, Field(pattern=NAME)], Annotated[str, Field(pattern=NAME)]] = Field(
        default_factory=dict, max_length=10
    )


# --- the query log ------------------------------------------------------------------------------------------------
def strict(value):
    """`value` with every non-finite float as None: the log and the answers are strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


# an absolute path of two or more parts (/srv/lab/models/YS/1), not a unit (MPa/wt%) or an endpoint (/design)
ABSOLUTE_PATH = re.compile(r"(?<![\w.%])(?:[A-Za-z]:)?[/\\](?:[^\s'\"/\\]+[/\\])+[^\s'\",;)/\\]*")


def redact(value):
    """`value` with every absolute path cut to its last part: a client learns no server folder."""
    if isinstance(value, str):
        return ABSOLUTE_PATH.sub(lambda m: re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1] or "<path>", value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
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
    """One row per request the log keeps (every /predict and /design, and every refused request): query id, time,
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


BEARER = HTTPBearer(auto_error=False)  # reads the Authorization header (configuration only, no state)


def authorised(request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
    token = request.app.state.token
    if token is None:
        return
    if cred is None or not secrets.compare_digest(cred.credentials.encode(), token.encode()):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


# --- the app ------------------------------------------------------------------------------------------------------
def _records(df) -> list[dict]:
    return json.loads(df.to_json(orient="records", double_precision=6)) if len(df) else []


def per_target(row: dict, targets, fields) -> dict:
    """{target: {field: row[f"{target}_{field}"]}} for the fields the row has (truth: demo data only)."""
    return {t: {f: row[f"{t}_{f}"] for f in fields if f"{t}_{f}" in row} for t in targets}


def candidates_json(result: dict) -> list[dict]:
    """The ranked recipes as the API shows them: composition, process, the recipe as a raw data card,
    predictions ± σ with deviation and chance within tolerance per target, cost, domain, nearest card, note."""
    top = result["candidates"]
    data = result["data"]
    elements = result["elements"]
    process_cols = [
        c
        for c in top.columns
        if c in data.categoricals or c in data.numeric or c.endswith("_schedule") or c.endswith("_schedule_readable")
    ] + [c for c in top.columns if c.endswith("_type")]
    out = []
    rows = _records(top)
    cards = _records(result["recommended_cards"])
    for i, r in enumerate(rows):
        preds = per_target(r, result["targets"], ("target", "pred", "std", "dev", "within_tol", "p_hit", "truth"))
        for t, p in preds.items():
            p["unit"] = result["units"][t]
        out.append(
            {
                "rank": r["rank"],
                "p_hit": r["p_hit"],
                "score": r["score"],
                "composition_wt_pct": {el: r[el] for el in elements},
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


def create_app(
    registry=RegistryConfig.path,
    token: str | None = None,
    workers: int | None = None,
    max_cards: int = 5000,
    max_body_bytes: int = 8_000_000,
    query_log=None,
    base_cfg=None,
    log_max_bytes: int = 16_384,
    log_retention_days: float | None = 90,
) -> FastAPI:
    """The service over `registry`. token: required bearer token (None = open, for 127.0.0.1); workers: design
    and predict requests running at once (default: the machine's cores), more get 503 with Retry-After;
    log_max_bytes / log_retention_days: the query log's bounds (QueryLog)."""
    assistant = Assistant(registry, base_cfg)
    queries = QueryLog(
        query_log or assistant.registry.path / "queries.sqlite",
        max_bytes=log_max_bytes,
        retention_days=log_retention_days,
    )
    slots = threading.BoundedSemaphore(max(1, min(workers or cores(), cores())))
    app = FastAPI(
        title="alloy_hydra design assistant",
        version=__import__("alloy_hydra").__version__,
        description="Recipes (composition + process) that hit target properties, and predictions for data cards, "
        "from the versions of a model registry.",
    )
    app.state.assistant, app.state.queries = assistant, queries
    app.state.token = token

    def logged(request: Request, status: int, inputs, outputs, versions=None, qid: str | None = None) -> None:
        """The request in the query log, once (an answer, a refusal or a failure; qid: the id the client got)."""
        if getattr(request.state, "logged", False):
            return
        request.state.logged = True
        queries.add(qid or uuid.uuid4().hex, request.url.path, status, inputs, versions or {}, outputs)

    def public(body):
        """A response body as strict JSON with no server path in it."""
        return redact(json.loads(assistant.public(json.dumps(strict(body), default=str, allow_nan=False))))

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        if request.method in ("POST", "PUT"):
            length = request.headers.get("content-length")
            if length is None:
                detail = "Content-Length is required"
                logged(request, 411, None, {"error": detail})
                return JSONResponse({"detail": detail}, status_code=411)
            if not length.isdigit() or int(length) > max_body_bytes:
                detail = f"request body larger than {max_body_bytes} bytes"
                logged(request, 413, {"content_length": length}, {"error": detail})
                return JSONResponse({"detail": detail}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        logged(request, 422, getattr(exc, "body", None), {"error": errors})
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException):
        if exc.status_code >= 400:
            logged(request, exc.status_code, None, {"error": exc.detail})
        return JSONResponse({"detail": public(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RegistryDamaged)
    async def damaged(request: Request, exc: RegistryDamaged):  # outside a version load (/models' index)
        detail = {"field": "registry", "message": assistant.public(str(exc))}
        logged(request, 503, None, {"error": detail})
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "60"})

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # never a traceback to the client
        log.exception("request failed: %s", exc)
        logged(request, 500, None, {"error": f"{type(exc).__name__}: {assistant.public(str(exc))}"})
        return JSONResponse({"detail": "internal error; the service log has the details"}, status_code=500)

    def busy() -> HTTPException:
        return HTTPException(503, "the design workers are all busy; retry shortly", headers={"Retry-After": "5"})

    async def in_pool(request: Request, inputs, fn, *args):
        if not slots.acquire(blocking=False):
            logged(request, 503, inputs, {"error": "busy"})
            raise busy()
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            slots.release()

    def refuse(request: Request, err: RequestError, qid: str, inputs) -> HTTPException:
        detail = {"field": err.field, "message": assistant.public(str(err)), "query_id": qid}
        logged(request, err.status, inputs, {"error": detail}, qid=qid)
        headers = {"Retry-After": "60"} if err.status == 503 else None
        return HTTPException(err.status, detail, headers=headers)

    @app.get("/health")
    def health():
        ready, reason, versions = assistant.ready()
        return public({"status": "ok", "ready": ready, "reason": reason, "models": versions})

    @app.get("/models", dependencies=[Depends(authorised)])
    def models():
        index = assistant.registry.index()
        cards = {}
        for target, entry in index["targets"].items():
            for v in entry["versions"]:
                card = assistant.registry.path / target / v / "card.json"
                cards.setdefault(target, {})[v] = json.loads(card.read_text()) if card.exists() else None
        return public({"targets": index["targets"], "cards": cards, "options": assistant.options()})

    @app.post("/design", dependencies=[Depends(authorised)])
    async def design(request: Request, body: DesignBody):
        qid = uuid.uuid4().hex
        inputs = body.model_dump()
        try:
            result = await in_pool(request, inputs, assistant.design, body.request())
        except RequestError as err:
            raise refuse(request, err, qid, inputs) from None
        candidates = candidates_json(result)
        reachable = result["reason"] is None
        answer = public(
            {
                "query_id": qid,
                "versions": result["versions"],
                "targets": result["targets"],
                "n_feasible": result["n_feasible"],
                "reason": result["reason"],
                # no pretend ranking: when no recipe has a real chance, the closest ones are shown as such
                "candidates": candidates if reachable else [],
                "closest": [] if reachable else candidates[:3],
            }
        )
        # the log keeps what the monitor joins measured outcomes to (rank, predictions, p_hit, domain), not the
        # whole answer: 20 recipes with their cards would be a digest beyond the log's row limit
        record = {
            **{k: answer[k] for k in ("query_id", "targets", "n_feasible", "reason")},
            "candidates": [
                {k: c[k] for k in ("rank", "p_hit", "in_domain", "predictions", "nearest_card")}
                for c in answer["candidates"] or answer["closest"]
            ],
        }
        logged(request, 200, inputs, record, result["versions"], qid)
        return answer

    @app.post("/predict", dependencies=[Depends(authorised)])
    async def predict(request: Request, body: PredictBody):
        qid = uuid.uuid4().hex
        inputs = body.model_dump()
        if len(body.cards) > max_cards:
            raise refuse(request, RequestError("cards", f"at most {max_cards} cards per request", 413), qid, inputs)
        try:
            raw = cards_from_records(body.cards)
            table, used = await in_pool(request, inputs, assistant.predict, raw, body.targets, body.models)
        except RequestError as err:
            raise refuse(request, err, qid, inputs) from None
        except RegistryDamaged as err:
            raise refuse(request, ServiceFault("registry", str(err)), qid, inputs) from None
        except AlloyHydraError as err:  # the cards themselves (a column the schema cannot read)
            raise refuse(request, RequestError("cards", str(err)), qid, inputs) from None
        targets = list(used)
        units = assistant.units(targets, body.models)
        out = []
        for r in _records(table):
            preds = per_target(r, targets, ("pred", "std", "in_domain", "domain_distance", "domain_reason"))
            for t, p in preds.items():
                p["unit"] = units[t]
            out.append({"card": r["source_row"] - 1, "predictions": preds, "rejected_reason": r["rejected_reason"]})
        answer = public({"query_id": qid, "versions": used, "units": units, "n_cards": len(out), "results": out})
        logged(request, 200, inputs, answer, used, qid)
        return answer

    return app


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.service", description=__doc__.splitlines()[0])
    ap.add_argument("--registry", default=RegistryConfig.path)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=None, help="design requests at once (default: cores)")
    ap.add_argument("--max-cards", type=int, default=5000)
    ap.add_argument("--log-max-bytes", type=int, default=16_384, help="query log: largest field kept whole")
    ap.add_argument("--log-retention-days", type=float, default=90, help="query log: days kept (0 = all)")
    args = ap.parse_args(argv)
    token = os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and token is None:
        print(f"error: listening on {args.host} needs a token: set {TOKEN_ENV} (or use --host 127.0.0.1)")
        return 2
    if not (Path(args.registry) / "index.json").exists():
        print(
            f"note: {args.registry} has no published models yet; /health says not ready until you run "
            "`python -m alloy_hydra.registry demo` (or publish your own runs)"
        )
    import uvicorn

    app = create_app(
        args.registry,
        token=token,
        workers=args.workers,
        max_cards=args.max_cards,
        log_max_bytes=args.log_max_bytes,
        log_retention_days=args.log_retention_days or None,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
