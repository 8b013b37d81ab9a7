from fastapi import APIRouter

from ..deps import AssistantDep, GateDep
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(assistant: AssistantDep, gate: GateDep):
    """Alive, and ready when every published version loads and verifies (no token needed)."""
    ready, reason, versions = assistant.ready()
    return gate.public({"status": "ok", "ready": ready, "reason": reason, "models": versions})
