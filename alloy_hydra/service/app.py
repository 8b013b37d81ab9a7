"""create_app: the settings read once, the shared state, the middleware and error handlers, the routers; main: the
command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

try:
    import fastapi  # noqa: F401
except ImportError:  # the base install has no web stack
    raise SystemExit("the service needs the app extras: pip install -e '.[app]'") from None
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..assistant import (
    Assistant,
    redact,  # noqa: F401  (re-exported: alloy_hydra.service.redact)
)
from ..registry import RegistryDamaged
from ..ui import TOKEN_ENV, is_loopback
from .deps import Gate, authorised
from .routers import design, health, models, predict
from .settings import Settings

log = logging.getLogger("alloy_hydra.service")
__all__ = ["create_app", "main", "redact"]


def create_app(registry=None, settings: Settings | None = None, **given) -> FastAPI:
    """The service over a registry: `settings` (Settings), or its fields given by name (registry first)."""
    if settings is None:
        settings = Settings(**({"registry": str(registry)} if registry is not None else {}), **given)
    assistant = Assistant(settings.registry, settings.base_cfg)
    gate = Gate(settings, assistant)
    app = FastAPI(
        title="alloy_hydra design assistant",
        version=__import__("alloy_hydra").__version__,
        description="Recipes (composition + process) that hit target properties, and predictions for data cards, "
        "from the versions of a model registry.",
    )
    app.state.settings, app.state.assistant, app.state.gate, app.state.queries = settings, assistant, gate, gate.queries
    _handlers(app, gate)
    app.include_router(health.router)
    for router in (models.router, design.router, predict.router):
        app.include_router(router, dependencies=[Depends(authorised)])
    return app


def _handlers(app: FastAPI, gate: Gate) -> None:
    """Every refusal and failure answered in the API's own shape and logged; never a traceback to the client."""
    limit = gate.settings.max_body_bytes

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        if request.method in ("POST", "PUT"):
            length = request.headers.get("content-length")
            if length is None:
                detail = "Content-Length is required"
                gate.logged(request, 411, None, {"error": detail})
                return JSONResponse({"detail": detail}, status_code=411)
            if not length.isdigit() or int(length) > limit:
                detail = f"request body larger than {limit} bytes"
                gate.logged(request, 413, {"content_length": length}, {"error": detail})
                return JSONResponse({"detail": detail}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        gate.logged(request, 422, getattr(exc, "body", None), {"error": errors})
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException):
        if exc.status_code >= 400:
            gate.logged(request, exc.status_code, None, {"error": exc.detail})
        return JSONResponse({"detail": gate.public(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RegistryDamaged)
    async def damaged(request: Request, exc: RegistryDamaged):  # outside a version load (/models' index)
        detail = {"field": "registry", "message": gate.assistant.public(str(exc))}
        gate.logged(request, 503, None, {"error": detail})
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "60"})

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("request failed: %s", exc)
        gate.logged(request, 500, None, {"error": f"{type(exc).__name__}: {gate.assistant.public(str(exc))}"})
        return JSONResponse({"detail": "internal error; the service log has the details"}, status_code=500)


def main(argv=None) -> int:
    d = Settings()
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.service", description="The design assistant over HTTP.")
    ap.add_argument("--registry", default=d.registry)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=d.workers, help="design requests at once (default: cores)")
    ap.add_argument("--max-cards", type=int, default=d.max_cards)
    ap.add_argument("--log-max-bytes", type=int, default=d.log_max_bytes, help="query log: largest field kept whole")
    ap.add_argument("--log-retention-days", type=float, default=d.log_retention_days, help="days kept (0 = all)")
    args = ap.parse_args(argv)
    settings = Settings.read(
        registry=args.registry,
        workers=args.workers,
        max_cards=args.max_cards,
        log_max_bytes=args.log_max_bytes,
        log_retention_days=args.log_retention_days or None,
    )
    if not is_loopback(args.host) and settings.token is None:
        print(f"error: listening on {args.host} needs a token: set {TOKEN_ENV} (or use --host 127.0.0.1)")
        return 2
    if not (Path(settings.registry) / "index.json").exists():
        print(
            f"note: {settings.registry} has no published models yet; /health says not ready until you run "
            "`python -m alloy_hydra.registry demo` (or publish your own runs)"
        )
    import uvicorn

    uvicorn.run(create_app(settings=settings), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
