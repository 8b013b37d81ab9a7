import json

from fastapi import APIRouter

from ..deps import AssistantDep, GateDep
from ..schemas import ModelsAnswer

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsAnswer)
def models(assistant: AssistantDep, gate: GateDep):
    """The registry's versions with their model cards, and what a design request may name."""
    index = assistant.registry.index()
    cards = {}
    for target, entry in index["targets"].items():
        for v in entry["versions"]:
            card = assistant.registry.path / target / v / "card.json"
            cards.setdefault(target, {})[v] = json.loads(card.read_text()) if card.exists() else None
    return gate.public({"targets": index["targets"], "cards": cards, "options": assistant.options()})
