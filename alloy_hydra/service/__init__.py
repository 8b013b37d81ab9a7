"""The design assistant as an HTTP service (FastAPI), over a model registry.

    python -m alloy_hydra.service [--registry models] [--host 127.0.0.1] [--port 8000] [--workers N]

GET /health (and readiness), GET /models, POST /predict, POST /design; OpenAPI docs with every request and
response schema at /docs. Set ALLOY_HYDRA_TOKEN to require `Authorization: Bearer <token>` on every endpoint but
/health; without a token the service listens on 127.0.0.1 only. Every /predict and /design is appended to the
query log (SQLite, <registry>/queries.sqlite) with its query id, inputs, model versions and outputs — the page's
queries too (alloy_hydra.answers).

FastAPI's "bigger applications" layout: `settings` (one Settings, read once), `deps` (the app's shared state and
the dependencies that hand it to a route: the assistant, the query log, auth), `schemas` (request and response
models), `routers/` (one per concern), `app` (create_app: middleware, error handlers, the routers).
"""

from ..answers import QueryLog, bounded, strict
from ..ui import TOKEN_ENV, is_loopback
from .app import create_app, main, redact
from .settings import Settings

__all__ = ["QueryLog", "Settings", "TOKEN_ENV", "bounded", "create_app", "is_loopback", "main", "redact", "strict"]
