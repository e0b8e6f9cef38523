"""Service `hemoptysis-order-safety` on order-sign: guards the orders about to be signed.

- A draft anticoagulant / antiplatelet (antithrombotics.toml) for a patient with active hemoptysis on record
  -> critical card, with a suggestion to delete the draft.
- Tranexamic acid drafted for a patient with an active thromboembolic condition (PE on record) -> warning.

`context.draftOrders` is the Bundle the hook defines; CDS Hooks 2.0 prefetch tokens cannot traverse it, so the
drafts are read from the context and the patient's conditions from prefetch (or the FHIR server).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest

from cql_equivalents.concept_match import coded_words, match_concept
from cql_equivalents.drug_exposure import flush_reason
from cql_equivalents.drug_terms import agent_of, concept_words
from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.fhir_values import concept_text
from cql_equivalents import fhir_valid
from cql_equivalents.model import ConditionFact
from cql_equivalents.readers import map_inputs
from cql_equivalents.readers.record import medication_concept
from cql_equivalents.patient_binding import foreign_reason
from cql_equivalents.tables import ATC_SYSTEMS, RXNORM, Agent, load, tables

from . import card_kit as kit
from . import suggestions as offer
from .prefetch_keys import required
from .service import CdsService, Evaluation

PREFETCH = {
    "patient": required("Patient/{{context.patientId}}", "the patient the draft orders are for"),
    "conditions": required("Condition?patient={{context.patientId}}", "hemoptysis on record, the reason for the guard"),
}
SAFETY = load("order_safety")


@dataclass(frozen=True)
class DraftOrder:
    reference: str | None  # "MedicationRequest/<id>"; None when the draft carries no id
    text: str
    agent: Agent | None  # an antithrombotic, when the drug is one
    antifibrinolytic: bool
    matched_by: str
    problem: str  # why the draft is not valid FHIR R4; "" when it is


def _is_antifibrinolytic(concept: Any) -> tuple[bool, str]:
    spec = SAFETY["antifibrinolytic"]

    def by_code(system: Any, code: str) -> tuple[bool, str] | None:
        if system == RXNORM and code in spec["rxnorm"]:
            return True, f"RxNorm {code}"
        if system in ATC_SYSTEMS and code in spec["atc"]:
            return True, f"ATC {code}"
        return None

    def by_words(text: str) -> tuple[bool, str] | None:
        word = next((name for name in spec["names"] if name in text), None)
        return (True, f"name '{word}' in the drug's text (no recognised code)") if word else None

    return match_concept([concept], code_row=by_code, words=lambda: coded_words(concept), word_row=by_words) \
        or (False, "")


def draft_orders(bundle: Mapping[str, Any], patient_id: str | None = None) -> list[DraftOrder]:
    """The draft MedicationRequests of the hook's Bundle that this guard watches (lenient: a bad entry is
    reported on its card, never a 500; a Bundle without `type`, as published examples send, is read). A draft
    whose subject is another patient is not this patient's order and is not read (patient_binding)."""
    pool = pool_from_values({"draftOrders": dict(bundle)})
    drafts = []
    for raw in pool.of("MedicationRequest"):
        if patient_id is not None and foreign_reason(raw, patient_id, must_name_patient=False):
            continue
        if raw.get("status") in SAFETY["draft"]["ignored_statuses"] or raw.get("doNotPerform") is True:
            continue
        concept = medication_concept(raw, pool)
        match = agent_of(concept)
        if match and flush_reason(raw, match[0], concept_words(concept)):
            continue  # a heparin lock / line flush keeps a catheter open: not an anticoagulant to stop (issue 14)
        antifibrinolytic, matched_by = (False, "") if match else _is_antifibrinolytic(concept)
        if match is None and not antifibrinolytic:
            continue
        problem = fhir_valid.validate(MedicationRequest, raw)[1]
        resource_id = raw.get("id")
        drafts.append(DraftOrder(
            reference=f"MedicationRequest/{resource_id}" if isinstance(resource_id, str) and resource_id else None,
            text=concept_text(concept) or (match[0].name if match else SAFETY["antifibrinolytic"]["name"]),
            agent=match[0] if match else None, antifibrinolytic=antifibrinolytic,
            matched_by=match[1] if match else matched_by, problem=problem))
    return drafts


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
        cards += [_antithrombotic_card(agent, items, bleeding, evaluation) for agent, items in by_agent.items()]
    txa = [draft for draft in drafts if draft.antifibrinolytic]
    if txa and clots:
        cards.append(_txa_card(txa, clots, evaluation))
    return kit.tidy(kit.with_data_not_read(cards, inputs))


def _facts(facts: list[ConditionFact]) -> str:
    return "; ".join(f"{fact.concept.label} (`{fact.reference}`, {kit.when(fact.at)})" for fact in facts)


def _draft_lines(drafts: list[DraftOrder]) -> str:
    lines = []
    for draft in drafts:
        where = f"`{draft.reference}`" if draft.reference else "no id in the draft"
        line = f"- {kit.plain(draft.text)} ({where}; matched by {draft.matched_by})"
        if draft.problem:
            line += f". The draft is {draft.problem}: read for this check anyway"
        lines.append(line)
    return "\n".join(lines)


def _removals(drafts: list[DraftOrder], label: str, why: str, recommended: bool | None) -> tuple[list[dict], str]:
    removable = [draft for draft in drafts if draft.reference]
    made = [offer.delete_draft(draft.reference, label if len(removable) == 1 else f"{label} ({draft.reference})",
                               f"Delete the unsigned draft {draft.reference} ({why})", recommended)
            for draft in removable]
    note = "" if len(removable) == len(drafts) else (
        "A draft without an id cannot be removed from this card: remove it in the ordering session.")
    return made, note


def _antithrombotic_card(agent: str, drafts: list[DraftOrder], bleeding: list[ConditionFact],
                         evaluation: Evaluation) -> dict:
    base = evaluation.links.public_base_url
    drug_class = drafts[0].agent.drug_class if drafts[0].agent else ""
    class_label = tables().reversal_classes.get(drug_class, {}).get("label", "antithrombotic")
    summary = f"Draft {agent} order with active hemoptysis on record: remove it unless the bleeding risk was weighed"
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = "Draft antithrombotic order with active hemoptysis on record: remove it unless bleeding risk was weighed"
    removals, note = _removals(drafts, f"Remove the draft {agent} order",
                               "active hemoptysis on record; Charya 2021 PMID 34527355", True)
    detail = kit.join(
        f"**Draft order about to be signed** ({class_label})\n\n" + _draft_lines(drafts),
        f"**Active hemoptysis on record**: {_facts(bleeding)}.",
        "**Why**: anticoagulant and antiplatelet drugs amplify bleeding from any source and are the first "
        "modifiable factor in hemoptysis (Charya 2021, PMID 34527355; seed 004 phase 3). In major bleeding the "
        "ACC 2020 ECDP says to stop the oral anticoagulant.",
        "**If the drug must continue** (e.g. a mechanical valve, a recent thromboembolism): when to restart after "
        "major bleeding is addressed by the ACC 2020 ECDP, but its day counts were not extracted (clinical.md E, "
        "unconfirmed): decide with the treating team and document why.",
        note,
    )
    card = kit.card(summary, "critical", detail, kit.source(base, "draft-antithrombotic-with-hemoptysis"),
                    **offer.with_suggestions(removals))
    card["overrideReasons"] = offer.override_reasons("draft-antithrombotic")
    card["links"] = [offer.dossier_link(evaluation.links),
                     *offer.smart_link(evaluation.links, "draft-antithrombotic-with-hemoptysis")]
    return card


def _txa_card(drafts: list[DraftOrder], clots: list[ConditionFact], evaluation: Evaluation) -> dict:
    base = evaluation.links.public_base_url
    labels = ", ".join(sorted({fact.concept.label for fact in clots}))
    summary = f"Tranexamic acid drafted with active {labels} on record: weigh thrombosis risk; label contraindications unconfirmed"
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = "Tranexamic acid drafted with an active thromboembolic condition on record: weigh the thrombosis risk"
    removals, note = _removals(drafts, "Remove the draft tranexamic acid order",
                               "active thromboembolic condition on record", None)
    detail = kit.join(
        "**Draft order about to be signed**\n\n" + _draft_lines(drafts),
        f"**Active thromboembolic condition on record**: {_facts(clots)}.",
        "**Why this warns**: tranexamic acid is antifibrinolytic, which conflicts with active venous "
        "thromboembolism; case reports describe PE during TXA given for hemoptysis (Moen, ICVTS 2013, partially "
        "confirmed). No guideline addresses TXA for PE-related hemoptysis (clinical.md E).",
        "**Unconfirmed**: the tranexamic acid label contraindications were not retrieved for this service "
        "(clinical.md E, unconfirmed): verify them on the current label (DailyMed / SmPC) before signing.",
        "If the hemoptysis comes from the PE, its management belongs to the PE engine (`pulm.pe.core.v1`, seed 004).",
        note,
    )
    card = kit.card(summary, "warning", detail, kit.source(base, "draft-txa-with-thromboembolism"),
                    **offer.with_suggestions(removals))
    card["overrideReasons"] = offer.override_reasons("draft-txa")
    card["links"] = [
        {"label": "Pulmonary embolism engine (pulm.pe.core.v1)", "url": f"{evaluation.links.engine_base_url}/pulm.pe.core.v1",
         "type": "absolute"},
        offer.dossier_link(evaluation.links),
        *offer.smart_link(evaluation.links, "draft-txa-with-thromboembolism")]
    return card


SERVICE = CdsService(
    id="hemoptysis-order-safety",
    hook="order-sign",
    title="Hemoptysis order safety: antithrombotic and tranexamic acid drafts",
    description=(
        "At signing: warns when an anticoagulant or antiplatelet order is drafted for a patient with active "
        "hemoptysis on record (critical, with a suggestion to delete the draft), and when tranexamic acid is "
        "drafted for a patient with an active pulmonary embolism on record (warning)."
    ),
    usage_requirements=(
        "Needs context.draftOrders (a FHIR R4 Bundle of MedicationRequest drafts) and read access to Patient and "
        "Condition, by prefetch or through fhirServer + fhirAuthorization. Adults only."
    ),
    prefetch=PREFETCH,
    evaluate=evaluate,
    required_context=("userId", "patientId", "draftOrders"),
)
