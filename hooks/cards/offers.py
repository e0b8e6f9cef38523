"""Which orders, override reasons and links a card gets, besides its text.

Kept out of the card builders so the clinical text and the actions evolve apart. Which orders a card offers
is data (orders.toml [[offer]], by card topic); the reversal orders and their doses come from the reversal plan.
A warning or critical card with no [[offer]] row still gets override reasons (set `other`) and the SMART link.
The caller names the card's topic: the card's dict is never read back to find it.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from cql_equivalents.results import HaemostaticPlan, Level, PatientReversal, Severity
from cql_equivalents.model import EngineInputs
from cql_equivalents.localization import study_on_record
from cql_equivalents.reversal_due import reversal_agent_due
from cql_equivalents.tables import load

from ..service import Evaluation
from . import answer_guard
from .fhir_orders import OrderTarget, order_table
from .links import add_links, dossier_link, phases_link, smart_link
from .suggestions import hold_active_order, order, reversal_orders, with_suggestions


@cache
def _population_rows() -> dict[str, dict]:
    """populations.toml by key, made once per process (the table is; callers only read it)."""
    return {row["key"]: row for row in load("populations")["population"]}


def _already_on_record(keys: Iterable[str], inputs: EngineInputs) -> set[str]:
    """Study orders (orders.toml `not_repeated_when_on_record`) whose study this episode already holds and no repeat
    is advised (localization.study_on_record): the card says the study is on record instead of ordering it again."""
    services = order_table().services
    return {key for key in keys if services.get(key, {}).get("not_repeated_when_on_record")
            and study_on_record(inputs, services[key]["not_repeated_when_on_record"]) is not None}


def override_reasons(kind: str) -> list[dict]:
    """The override reasons of a set (override_reasons.toml `sets`)."""
    return list(map(dict.copy, order_table().override_sets[kind]))  # fresh dicts: a card's members are its own


def attach(card: dict, topic: str, evaluation: Evaluation, inputs: EngineInputs, severity: Severity,
           plan: PatientReversal | None = None, populations: Iterable[str] | None = None,
           advised_against: Iterable[str] = (), haemostasis: HaemostaticPlan | None = None,
           recommend: bool = True) -> dict:
    """Add suggestions + selectionBehavior, overrideReasons and links to a card built by builder.card.
    `topic`: the card's topic, which decides its orders.toml [[offer]] row.
    `populations`: the special-population keys the engine matched (Assessment.populations: the same evidence the
    card text describes). Orders the card itself advises against (answer_guard.declare), that a matched population
    rules out (populations.toml `advises_against`), or that a rule that applies advises against
    (contraindications.toml, `advised_against`), are never offered. `recommend=False` (the record limits
    escalation: DNR / palliative care) offers the orders without isRecommended: the clinician decides.
    `plan`: the patient's one reversal plan (reversal card); `haemostasis`: the haemostatic plan (its card)."""
    spec = order_table().offers.get(topic)
    if spec is None:
        if card["indicator"] != "info":
            card["overrideReasons"] = override_reasons("other")
            add_links(card, smart_link(evaluation.links, topic))
        return card
    present = list(populations or ())  # special populations and care-context keys (pregnancy...)
    rows = _population_rows()
    withheld = answer_guard.declared(card) | {key for name in present if name in rows
                                              for key in rows[name].get("advises_against", ())}
    withheld |= set(advised_against)
    massive = severity.level is Level.MASSIVE
    priority = spec["priority"] if (plan is None and haemostasis is None) or massive else "urgent"
    target = OrderTarget.of(evaluation.context, priority, (fact.reference for fact in severity.bleeding),
                            inputs.value("body_weight"))
    if plan is not None:
        # stopping the drug comes first whatever the severity; a reversal agent is offered for life-threatening
        # bleeding only (ACC 2020 ECDP): otherwise the card says when it would be due (reversal_due). After a
        # recent coronary stent, cardiology comes first.
        made = []
        if plan.stent is not None:
            made.append(order(plan.stent.rule["order"], target, True))
        made += _holds(plan, evaluation)
        if reversal_agent_due(severity):
            made += reversal_orders([o for o in plan.orders if o.line.order not in withheld], target, recommended=True)
    elif haemostasis is not None:
        made = [_haemostasis_order(item_key, haemostasis, target, massive and item_key not in haemostasis.not_recommended)
                for item_key in haemostasis.orders if item_key not in withheld]
        made += [_haemostasis_order(item_key, haemostasis, target, False) for item_key in haemostasis.alternatives
                 if item_key not in withheld]
    else:
        extra = [row for row in spec.get("by_population", ()) if row["population"] in present]
        recommended = [*spec["recommended"], *(key for row in extra for key in row["recommended"])]
        also = [*spec["also"], *(key for row in extra for key in row["also"])]
        withheld |= _already_on_record([*recommended, *also], inputs)
        recommended = [key for key in dict.fromkeys(recommended) if key not in withheld]
        also = [key for key in dict.fromkeys(also) if key not in withheld and key not in recommended]
        made = [order(key, target, True if recommend else None) for key in recommended]
        made += [order(key, target) for key in also]
    card.update(with_suggestions(made))
    card["overrideReasons"] = override_reasons(spec["override"])
    # the engine report is no card: the bleeding card links to the documentation's phase section instead
    add_links(card, [*([] if plan or haemostasis else [dossier_link(evaluation.links), phases_link(evaluation.links)]),
                     *smart_link(evaluation.links, topic)])
    return card


def _holds(plan: PatientReversal, evaluation: Evaluation) -> list[dict | None]:
    """One hold per active MedicationRequest of each agent (a MedicationStatement is the patient's report: there is
    no order to hold, the card's text says to stop the drug). After a recent coronary stent an antiplatelet hold is
    offered, not recommended: cardiology decides first."""
    made: list[dict | None] = []
    seen: set[str] = set()
    for agent_plan in plan.plans:
        why = f"active hemoptysis on {agent_plan.agent}: stop the drug (ACC 2020 ECDP, major bleeding)"
        recommended = None if plan.stent is not None and agent_plan.drug_class == "antiplatelet" else True
        for use in agent_plan.uses:
            if use.reference.startswith("MedicationRequest/") and use.status == "active" \
                    and use.reference in evaluation.pool.by_reference and use.reference not in seen:  # on-hold holds
                seen.add(use.reference)
                made.append(hold_active_order(evaluation.pool.by_reference[use.reference], agent_plan.agent,
                                              why, recommended))
    return made


def _haemostasis_order(key: str, plan: HaemostaticPlan, target: OrderTarget, massive: bool) -> dict | None:
    """Components for bleeding, recommended when it is life-threatening (sources: for bleeding, not numbers alone)."""
    detail = next((item.quantity_text for item in plan.off_target if item.row["order"] == key and item.quantity_text), "")
    return order(key, target, True if massive else None, detail)
