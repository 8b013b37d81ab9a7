"""The service's settings: one object, read once (command line and environment) and handed to create_app."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..config import RegistryConfig
from ..ui import TOKEN_ENV


@dataclass(frozen=True)
class Settings:
    registry: str = RegistryConfig.path  # the registry folder the versions come from
    token: str | None = None  # required bearer token (None = open: the service then listens on 127.0.0.1 only)
    workers: int | None = None  # design / predict requests at once (None = the machine's cores); more get 503
    max_cards: int = 5000  # cards per /predict request
    max_body_bytes: int = 8_000_000
    query_log: str | None = None  # None = <registry>/queries.sqlite
    log_max_bytes: int = 16_384  # the query log's largest field kept whole (beyond: its digest)
    log_retention_days: float | None = 90  # rows older than this are deleted (None = kept)
    base_cfg: Any = None  # the run config requests start from (None = run.py's defaults)

    @classmethod
    def read(cls, **given) -> Settings:
        """Settings from the command line's values, the token from the environment (ALLOY_HYDRA_TOKEN)."""
        return cls(**{**given, "token": os.environ.get(TOKEN_ENV) or None})
