"""The cards of `hemoptysis-order-safety`: each names the drafts, the conditions on record that make them unsafe,
and offers to delete the drafts that carry an id."""
from __future__ import annotations

from cql_equivalents.model import ConditionFact
from cql_equivalents.tables import tables

from ..cards.builder import card, source
from ..cards.clinician_words import plain
from ..cards.links import dossier_link, engine_link, smart_link
from ..cards.markdown import join, when
from ..cards.offers import override_reasons
from ..cards.suggestions import delete_draft, with_suggestions
from ..cards.summary import SUMMARY_LIMIT, fit
from ..service import Evaluation
from .drafts import DraftOrder

ANTITHROMBOTIC_TOPIC = "draft-antithrombotic-with-hemoptysis"
TXA_TOPIC = "draft-txa-with-thromboembolism"


def _facts(facts: list[ConditionFact]) -> str:
    return "; ".join(f"{fact.concept.label} (`{fact.reference}`, {when(fact.at)})" for fact in facts)


def _draft_lines(drafts: list[DraftOrder]) -> str:
    lines = []
    for draft in drafts:
        where = f"`{draft.reference}`" if draft.reference else "no id in the draft"
        line = f"- {plain(draft.text)} ({where}; matched by {draft.matched_by})"
        if draft.problem:
            line += f". The draft is {draft.problem}: read for this check anyway"
        lines.append(line)
    return "\n".join(lines)


def _removals(drafts: list[DraftOrder], label: str, why: str, recommended: bool | None) -> tuple[list[dict], str]:
    removable = [draft for draft in drafts if draft.reference]
    made = [delete_draft(draft.reference, label if len(removable) == 1 else f"{label} ({draft.reference})",
                               f"Delete the unsigned draft {draft.reference} ({why})", recommended)
            for draft in removable]
    note = "" if len(removable) == len(drafts) else (
        "A draft without an id cannot be removed from this card: remove it in the ordering session.")
    return made, note


def antithrombotic_card(agent: str, drafts: list[DraftOrder], bleeding: list[ConditionFact],
                         evaluation: Evaluation) -> dict:
    base = evaluation.links.public_base_url
    drug_class = drafts[0].agent.drug_class if drafts[0].agent else ""
    class_label = tables().reversal_classes.get(drug_class, {}).get("label", "antithrombotic")
    summary = fit(["Draft {agent} order with active hemoptysis on record: remove it unless the bleeding risk was weighed",
                   "Draft antithrombotic order with active hemoptysis on record: remove it unless bleeding risk was weighed"],
                  within=SUMMARY_LIMIT - 1, agent=agent)
    removals, note = _removals(drafts, f"Remove the draft {agent} order",
                               "active hemoptysis on record; Charya 2021 PMID 34527355", True)
    detail = join(
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
    built = card(summary, "critical", detail, source(base, ANTITHROMBOTIC_TOPIC), **with_suggestions(removals))
    built["overrideReasons"] = override_reasons("draft-antithrombotic")
    built["links"] = [dossier_link(evaluation.links),
                     *smart_link(evaluation.links, ANTITHROMBOTIC_TOPIC)]
    return built


def txa_card(drafts: list[DraftOrder], clots: list[ConditionFact], evaluation: Evaluation) -> dict:
    base = evaluation.links.public_base_url
    labels = ", ".join(sorted({fact.concept.label for fact in clots}))
    summary = fit(["Tranexamic acid drafted with active {labels} on record: weigh thrombosis risk; label contraindications "
                   "unconfirmed",
                   "Tranexamic acid drafted with an active thromboembolic condition on record: weigh the thrombosis risk"],
                  within=SUMMARY_LIMIT - 1, labels=labels)
    removals, note = _removals(drafts, "Remove the draft tranexamic acid order",
                               "active thromboembolic condition on record", None)
    detail = join(
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
    built = card(summary, "warning", detail, source(base, TXA_TOPIC), **with_suggestions(removals))
    built["overrideReasons"] = override_reasons("draft-txa")
    built["links"] = [
        engine_link(evaluation.links, "pulm.pe.core.v1", "Pulmonary embolism engine"),
        dossier_link(evaluation.links),
        *smart_link(evaluation.links, TXA_TOPIC)]
    return built
