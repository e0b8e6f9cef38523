"""What each patient-view card offers besides its text: orders (suggestions), override reasons and links.

Kept out of the card builders so the clinical text and the actions evolve apart. Which orders a card offers
is data (orders.toml [[offer]]); the reversal orders and their doses come from the reversal plan. A warning or
critical card with no [[offer]] row still gets override reasons (set `other`) and the SMART link.
"""
from __future__ import annotations

from collections.abc import Iterable

from cql_equivalents.inputs import EngineInputs
from cql_equivalents.reversal import ReversalPlan
from cql_equivalents.reversal_due import reversal_agent_due
from cql_equivalents.severity import Level, Severity

from . import suggestions as offer
from .service import Evaluation


def populations_on_record(inputs: EngineInputs) -> set[str]:
    """Special populations opened by the conditions on record (conditions.toml `population`)."""
    return {fact.concept.population for fact in inputs.conditions if fact.concept.population}


def attach(card: dict, evaluation: Evaluation, inputs: EngineInputs, severity: Severity,
           plan: ReversalPlan | None = None, populations: Iterable[str] | None = None) -> dict:
    """Add suggestions + selectionBehavior, overrideReasons and links to a card built by kit.card.
    `populations`: the special-population keys the engine matched (default: those of the conditions on record)."""
    topic = card["source"]["topic"]["code"]
    spec = offer.order_table().offers.get(topic)
    if spec is None:
        if card["indicator"] != "info":
            card["overrideReasons"] = offer.override_reasons("other")
            _add_links(card, offer.smart_link(evaluation.links, topic))
        return card
    present = set(populations_on_record(inputs) if populations is None else populations)
    withheld = {key for rule in spec.get("withhold", ()) if rule["population"] in present for key in rule["orders"]}
    massive = severity.level is Level.MASSIVE
    priority = spec["priority"] if plan is None or massive else "urgent"
    target = offer.OrderTarget.of(evaluation.context, priority, (fact.reference for fact in severity.bleeding),
                                  inputs.value("body_weight"))
    if plan is not None:
        # stopping the drug comes first whatever the severity; a reversal agent is offered for life-threatening
        # bleeding only (ACC 2020 ECDP): otherwise the card says when it would be due (reversal_due)
        made = _holds(plan, evaluation)
        if reversal_agent_due(severity):
            made += offer.reversal_orders(plan, target, recommended=True)
    else:
        made = [offer.order(key, target, True) for key in spec["recommended"] if key not in withheld]
        made += [offer.order(key, target) for key in spec["also"] if key not in withheld]
    card.update(offer.with_suggestions(made))
    card["overrideReasons"] = offer.override_reasons(spec["override"])
    _add_links(card, [*([] if plan else [offer.dossier_link(evaluation.links)]),
                      *offer.smart_link(evaluation.links, topic)])
    return card


def _add_links(card: dict, links: list[dict]) -> None:
    merged = [*card.get("links", ()), *links]
    if merged:
        card["links"] = merged


def _holds(plan: ReversalPlan, evaluation: Evaluation) -> list[dict | None]:
    """One hold per active MedicationRequest of the agent (a MedicationStatement is the patient's report: there is
    no order to hold, the card's text says to stop the drug)."""
    why = f"active hemoptysis on {plan.agent}: stop the drug (ACC 2020 ECDP, major bleeding)"
    return [offer.hold_active_order(evaluation.pool.by_reference[use.reference], plan.agent, why, True)
            for use in plan.uses
            if use.reference.startswith("MedicationRequest/") and use.status == "active"  # on-hold already holds it
            and use.reference in evaluation.pool.by_reference]
