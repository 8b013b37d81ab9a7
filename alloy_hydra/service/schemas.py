"""Request and response models: what /docs shows, what the routes validate and return."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ..answers import (  # noqa: F401  (the answers' models live with the answers: the page and the monitor use them)
    Candidate,
    CardPrediction,
    DesignAnswer,
    PredictAnswer,
    PredictResult,
    RecipePrediction,
)
from ..assistant import REQUEST_TARGETS, TARGET_LIMITS, DesignRequest

NAME = r"^[A-Za-z0-9_.-]{1,40}$"  # a version number or an alias: never a path


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


# --- responses ----------------------------------------------------------------------------------------------------
class Health(BaseModel):
    status: str = Field(description="ok while the service answers")
    ready: bool = Field(description="every published version loads and verifies")
    reason: str | None = Field(description="why not ready")
    models: dict[str, Any] = Field(description="{target: version} of the champions")


class ModelsAnswer(BaseModel):
    targets: dict[str, Any] = Field(description="the registry index: versions and aliases per target")
    cards: dict[str, dict[str, Any]] = Field(description="{target: {version: model card}}")
    options: dict[str, Any] = Field(description="what a design request may name: targets, families, castings")
