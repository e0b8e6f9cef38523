"""Which cards `hemoptysis-order-safety` answers with: an antithrombotic drafted during active hemoptysis, and
tranexamic acid drafted with an active thromboembolic condition."""
from __future__ import annotations

from cql_equivalents.readers import map_inputs

from ..cards.builder import tidy
from ..cards.markdown import with_data_not_read
from ..service import Evaluation
from .draft_cards import antithrombotic_card, txa_card
from .drafts import SAFETY, DraftOrder, draft_orders


def evaluate(evaluation: Evaluation) -> list[dict]:
    drafts = draft_orders(evaluation.context["draftOrders"], evaluation.context.get("patientId"))
    if not drafts:
        return []
    inputs = map_inputs(evaluation.pool, evaluation.now)
    bleeding = inputs.conditions_with_role("bleeding")
    clots = [fact for fact in inputs.conditions if fact.concept.key in SAFETY["thromboembolic"]["conditions"]]
    cards = []
    if bleeding:
        by_agent: dict[str, list[DraftOrder]] = {}
        for draft in drafts:
            if draft.agent:
                by_agent.setdefault(draft.agent.name, []).append(draft)
        cards += [antithrombotic_card(agent, items, bleeding, evaluation) for agent, items in by_agent.items()]
    txa = [draft for draft in drafts if draft.antifibrinolytic]
    if txa and clots:
        cards.append(txa_card(txa, clots, evaluation))
    return tidy(with_data_not_read(cards, inputs))
