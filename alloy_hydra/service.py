"""The design assistant as an HTTP service (FastAPI), over a model registry.

    python -m alloy_hydra.service [--registry models] [--host 127.0.0.1] [--port 8000] [--workers N]

GET /health (and readiness), GET /models, POST /predict, POST /design; OpenAPI docs at /docs. Set
ALLOY_HYDRA_TOKEN to require `Authorization: Bearer <token>` on every endpoint but /health; without a token the
service listens on 127.0.0.1 only. Every /predict and /design is appended to the query log (SQLite,
<registry>/queries.sqlite) with its query id, inputs, model versions and outputs.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import secrets
import sqlite3
import sys
import threading
import uuid
from datetime import datetime, timezone
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

from .assistant import REQUEST_TARGETS, Assistant, DesignRequest, RequestError, cards_from_records
from .errors import AlloyHydraError

log = logging.getLogger("alloy_hydra.service")
TOKEN_ENV = "ALLOY_HYDRA_TOKEN"
NAME = r"^[A-Za-z0-9_.-]{1,40}$"  # a version number or an alias: never a path


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- request bodies -----------------------------------------------------------------------------------------------
class DesignBody(BaseModel):
    """The action plan's question; every target is optional but at least one is needed."""

    model_config = ConfigDict(extra="forbid")
    target_YS: float | None = Field(None, gt=0, le=1000, description="yield strength, MPa")
    target_UTS: float | None = Field(None, gt=0, le=1000, description="tensile strength, MPa")
    target_EL: float | None = Field(None, gt=0, le=100, description="elongation at fracture, %")
    alloy_family: str | None = Field(None, max_length=20, examples=["AA5xxx"])
    casting: str | None = Field(None, max_length=20, examples=["DC"])
    max_cost: float | None = Field(None, gt=0, le=1e4, description="cost index relative to pure Al")
    top: int | None = Field(None, ge=1, le=100, description="recipes returned (default 20)")
    min_YS: float | None = Field(None, ge=0, le=1000)
    min_UTS: float | None = Field(None, ge=0, le=1000)
    min_EL: float | None = Field(None, ge=0, le=100)
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
class QueryLog:
    """One row per /predict and /design: query id, time, endpoint, inputs, model versions, outputs (JSON)."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS queries (id TEXT PRIMARY KEY, time TEXT, endpoint TEXT, status INTEGER,"
                " inputs TEXT, versions TEXT, outputs TEXT)"
            )

    def _connect(self):
        return sqlite3.connect(self.path, timeout=30)

    def add(self, qid: str, endpoint: str, status: int, inputs, versions, outputs) -> None:
        row = (
            qid,
            datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            endpoint,
            status,
            json.dumps(inputs, default=str),
            json.dumps(versions, default=str),
            json.dumps(outputs, default=str),
        )
        with self._lock, self._connect() as db:
            db.execute("INSERT INTO queries VALUES (?, ?, ?, ?, ?, ?, ?)", row)

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
    registry="models",
    token: str | None = None,
    workers: int | None = None,
    max_cards: int = 5000,
    max_body_bytes: int = 8_000_000,
    query_log=None,
    base_cfg=None,
) -> FastAPI:
    """The service over `registry`. token: required bearer token (None = open, for 127.0.0.1); workers: design
    and predict requests running at once (default: the machine's cores), more get 503 with Retry-After."""
    assistant = Assistant(registry, base_cfg)
    queries = QueryLog(query_log or assistant.registry.path / "queries.sqlite")
    slots = threading.BoundedSemaphore(max(1, min(workers or cores(), cores())))
    app = FastAPI(
        title="alloy_hydra design assistant",
        version=__import__("alloy_hydra").__version__,
        description="Recipes (composition + process) that hit target properties, and predictions for data cards, "
        "from the versions of a model registry.",
    )
    app.state.assistant, app.state.queries = assistant, queries
    app.state.token = token

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        if request.method in ("POST", "PUT"):
            length = request.headers.get("content-length")
            if length is None:
                return JSONResponse({"detail": "Content-Length is required"}, status_code=411)
            if not length.isdigit() or int(length) > max_body_bytes:
                return JSONResponse({"detail": f"request body larger than {max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # never a traceback to the client
        log.exception("request failed: %s", exc)
        return JSONResponse({"detail": "internal error; the service log has the details"}, status_code=500)

    def busy() -> HTTPException:
        return HTTPException(503, "the design workers are all busy; retry shortly", headers={"Retry-After": "5"})

    async def in_pool(qid: str, endpoint: str, inputs, fn, *args):
        if not slots.acquire(blocking=False):
            queries.add(qid, endpoint, 503, inputs, {}, {"error": "busy"})
            raise busy()
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            slots.release()

    def refuse(err: RequestError, qid: str, endpoint: str, inputs) -> HTTPException:
        queries.add(qid, endpoint, err.status, inputs, {}, {"error": str(err)})
        return HTTPException(err.status, {"field": err.field, "message": str(err), "query_id": qid})

    @app.get("/health")
    def health():
        try:
            targets = assistant.registry.targets()
            versions = assistant.in_use(targets) if targets else {}
            ready, reason = bool(targets), None if targets else "the registry has no published model"
        except AlloyHydraError as err:
            versions, ready, reason = {}, False, str(err)
        return {"status": "ok", "ready": ready, "reason": reason, "models": {t: v["ref"] for t, v in versions.items()}}

    @app.get("/models", dependencies=[Depends(authorised)])
    def models():
        index = assistant.registry.index()
        cards = {}
        for target, entry in index["targets"].items():
            for v in entry["versions"]:
                card = assistant.registry.path / target / v / "card.json"
                cards.setdefault(target, {})[v] = json.loads(card.read_text()) if card.exists() else None
        return {"targets": index["targets"], "cards": cards, "options": assistant.options()}

    @app.post("/design", dependencies=[Depends(authorised)])
    async def design(body: DesignBody):
        qid = uuid.uuid4().hex
        inputs = body.model_dump()
        try:
            result = await in_pool(qid, "/design", inputs, assistant.design, body.request())
        except RequestError as err:
            raise refuse(err, qid, "/design", inputs) from None
        candidates = candidates_json(result)
        answer = {
            "query_id": qid,
            "versions": result["versions"],
            "targets": result["targets"],
            "n_feasible": result["n_feasible"],
            "reason": result["reason"],
            "candidates": candidates,
        }
        queries.add(qid, "/design", 200, inputs, result["versions"], answer)
        return answer

    @app.post("/predict", dependencies=[Depends(authorised)])
    async def predict(body: PredictBody):
        qid = uuid.uuid4().hex
        if len(body.cards) > max_cards:
            raise HTTPException(413, {"field": "cards", "message": f"at most {max_cards} cards per request"})
        inputs = body.model_dump()
        try:
            raw = cards_from_records(body.cards)
            table, used = await in_pool(qid, "/predict", inputs, assistant.predict, raw, body.targets, body.models)
        except RequestError as err:
            raise refuse(err, qid, "/predict", inputs) from None
        except AlloyHydraError as err:  # the cards themselves (a column the schema cannot read)
            raise refuse(RequestError("cards", str(err)), qid, "/predict", inputs) from None
        targets = list(used)
        out = []
        for r in _records(table):
            preds = per_target(r, targets, ("pred", "std", "in_domain", "domain_distance"))
            out.append({"card": r["source_row"] - 1, "predictions": preds, "rejected_reason": r["rejected_reason"]})
        answer = {"query_id": qid, "versions": used, "n_cards": len(out), "results": out}
        queries.add(qid, "/predict", 200, inputs, used, answer)
        return answer

    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.service", description=__doc__.splitlines()[0])
    ap.add_argument("--registry", default="models")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=None, help="design requests at once (default: cores)")
    ap.add_argument("--max-cards", type=int, default=5000)
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

    app = create_app(args.registry, token=token, workers=args.workers, max_cards=args.max_cards)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
