import uuid

from fastapi import APIRouter, Request

from ... import answers
from ...assistant import RequestError
from ..deps import AssistantDep, GateDep
from ..schemas import DesignAnswer, DesignBody

router = APIRouter(tags=["design"])


@router.post("/design", response_model=DesignAnswer, response_model_exclude_unset=True)
async def design(request: Request, body: DesignBody, assistant: AssistantDep, gate: GateDep):
    """Recipes (composition + process) ranked by their chance to hit the targets together."""
    qid = uuid.uuid4().hex
    inputs = body.model_dump()
    try:
        result = await gate.in_pool(request, inputs, assistant.design, body.request())
    except RequestError as err:
        raise gate.refuse(request, err, qid, inputs) from None
    answer = gate.public(answers.design(result, qid))
    gate.logged(request, 200, inputs, answers.design_record(answer), result["versions"], qid)
    return answer
