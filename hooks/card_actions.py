"""What each patient-view card offers besides its text: orders (suggestions), override reasons and links.

Kept out of the card builders so the clinical text and the actions evolve apart. Which orders a card offers
is data (orders.toml [[offer]]); the reversal orders and their doses come from the reversal plan. A warning or
critical card with no [[offer]] row still gets override reasons (set `other`) and the SMART link.
"""
from __future__ import annotations

from collections.abc import Iterable

from cql_equivalents.inputs import EngineInputs
from cql_equivalents.reversal import ReversalPlan
from cql_equivalents.severity import Level, Severity
from cql_equivalents.tables import load

from . import answer_guard as guard
from . import suggestions as offer
from .service import Evaluation


def _population_rows() -> dict[str, dict]:
    return {row["key"]: row for row in load("populations")["population"]}


def attach(card: dict, evaluation: Evaluation, inputs: EngineInputs, severity: Severity,
           plan: ReversalPlan | None = None, populations: Iterable[str] | None = None, recommend: bool = True) -> dict:
    """Add suggestions + selectionBehavior, overrideReasons and links to a card built by kit.card.
    `populations`: the special-population keys the engine matched (Assessment.populations: the same evidence the
    card text describes). Orders the card itself advises against (answer_guard.declare), or that a matched
    population rules out (populations.toml `advises_against`), are never offered. `recommend=False` (the record
    limits escalation: DNR / palliative care) offers the orders without isRecommended: the clinician decides."""
    topic = card["source"]["topic"]["code"]
    spec = offer.order_table().offers.get(topic)
    if spec is None:
        if card["indicator"] != "info":
            card["overrideReasons"] = offer.override_reasons("other")
            _add_links(card, offer.smart_link(evaluation.links, topic))
        return card
    present = list(populations or ())  # special populations and care-context keys (pregnancy...)
    rows = _population_rows()
    withheld = guard.declared(card) | {key for name in present if name in rows for key in rows[name].get("advises_against", ())}
    massive = severity.level is Level.MASSIVE
    priority = spec["priority"] if plan is None or massive else "urgent"
    target = offer.OrderTarget.of(evaluation.context, priority, (fact.reference for fact in severity.bleeding))
    if plan is not None:
        # stopping the drug comes first whatever the severity; a reversal agent is recommended for
        # life-threatening bleeding only (ACC 2020 ECDP)
        made = _holds(plan, evaluation)
        made += [order for order in offer.reversal_orders(plan, target, recommended=True if massive else None)
                 if guard.order_key(order) not in withheld]  # e.g. 4F-PCC with HIT on record
    else:
        extra = [row for row in spec.get("by_population", ()) if row["population"] in present]
        recommended = [*spec["recommended"], *(key for row in extra for key in row["recommended"])]
        also = [*spec["also"], *(key for row in extra for key in row["also"])]
        recommended = [key for key in dict.fromkeys(recommended) if key not in withheld]
        also = [key for key in dict.fromkeys(also) if key not in withheld and key not in recommended]
        made = [offer.order(key, target, True if recommend else None) for key in recommended]
        made += [offer.order(key, target) for key in also]
    card.update(offer.with_suggestions(made))
    card["overrideReasons"] = offer.override_reasons(spec["override"])
    # the engine report is no card: the bleeding card links to the documentation's phase section instead
    _add_links(card, [*([] if plan else [offer.dossier_link(evaluation.links), offer.phases_link(evaluation.links)]),
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
            if use.reference.startswith("MedicationRequest/") and use.reference in evaluation.pool.by_reference]
