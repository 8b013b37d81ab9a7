"""The app's shared state and the dependencies that hand it to a route: the assistant, the gate (query log,
worker slots, public answers), and the bearer-token check."""

from __future__ import annotations

import json
import os
import secrets
import threading
import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .. import answers
from ..answers import QueryLog, strict
from ..assistant import Assistant, RequestError
from .settings import Settings

BEARER = HTTPBearer(auto_error=False)  # reads the Authorization header (configuration only, no state)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Gate:
    """What every route shares: the query log (each request logged once: an answer, a refusal or a failure), the
    worker slots (more requests than workers get 503), and public answers (strict JSON, no server path)."""

    def __init__(self, settings: Settings, assistant: Assistant):
        self.settings, self.assistant = settings, assistant
        self.queries = QueryLog(
            settings.query_log or assistant.registry.path / "queries.sqlite",
            max_bytes=settings.log_max_bytes,
            retention_days=settings.log_retention_days,
        )
        self.slots = threading.BoundedSemaphore(max(1, min(settings.workers or cores(), cores())))

    def logged(self, request: Request, status: int, inputs, outputs, versions=None, qid: str | None = None) -> None:
        if getattr(request.state, "logged", False):
            return
        request.state.logged = True
        self.queries.add(qid or uuid.uuid4().hex, request.url.path, status, inputs, versions or {}, outputs)

    def public(self, body):
        return self.assistant.public(json.loads(json.dumps(strict(body), default=str, allow_nan=False)))

    async def in_pool(self, request: Request, inputs, fn, *args):
        if not self.slots.acquire(blocking=False):
            self.logged(request, 503, inputs, {"error": "busy"})
            raise HTTPException(503, "the design workers are all busy; retry shortly", headers={"Retry-After": "5"})
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            self.slots.release()

    def refuse(self, request: Request, err: RequestError, qid: str, inputs) -> HTTPException:
        detail = answers.refusal(err.field, self.assistant.public(str(err)), qid)
        self.logged(request, err.status, inputs, {"error": detail}, qid=qid)
        headers = {"Retry-After": "60"} if err.status == 503 else None
        return HTTPException(err.status, detail, headers=headers)


def get_assistant(request: Request) -> Assistant:
    return request.app.state.assistant


def get_gate(request: Request) -> Gate:
    return request.app.state.gate


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def authorised(
    settings: Annotated[Settings, Depends(get_settings)],
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> None:
    if settings.token is None:
        return
    if cred is None or not secrets.compare_digest(cred.credentials.encode(), settings.token.encode()):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
GateDep = Annotated[Gate, Depends(get_gate)]
