import uuid

from fastapi import APIRouter, Request

from ... import answers
from ...assistant import RequestError, ServiceFault, cards_from_records
from ...errors import AlloyHydraError
from ...registry import RegistryDamaged
from ..deps import AssistantDep, GateDep
from ..schemas import PredictAnswer, PredictBody

router = APIRouter(tags=["predict"])


@router.post("/predict", response_model=PredictAnswer, response_model_exclude_unset=True)
async def predict(request: Request, body: PredictBody, assistant: AssistantDep, gate: GateDep):
    """Each card's predictions ± σ with its domain and the reason when out of it, or why it was rejected."""
    qid = uuid.uuid4().hex
    inputs = body.model_dump()
    limit = gate.settings.max_cards
    if len(body.cards) > limit:
        raise gate.refuse(request, RequestError("cards", f"at most {limit} cards per request", 413), qid, inputs)
    try:
        raw = cards_from_records(body.cards)
        table, used = await gate.in_pool(request, inputs, assistant.predict, raw, body.targets, body.models)
    except RequestError as err:
        raise gate.refuse(request, err, qid, inputs) from None
    except RegistryDamaged as err:
        raise gate.refuse(request, ServiceFault("registry", str(err)), qid, inputs) from None
    except AlloyHydraError as err:  # the cards themselves (a column the schema cannot read)
        raise gate.refuse(request, RequestError("cards", str(err)), qid, inputs) from None
    answer = gate.public(answers.predict(table, used, assistant.units(list(used), body.models), qid))
    gate.logged(request, 200, inputs, answer, used, qid)
    return answer
