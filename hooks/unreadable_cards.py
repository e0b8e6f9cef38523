"""The card for a bleeding record that was sent but could not be read.

Without it, the only hemoptysis Condition failing validation would give `{"cards": []}`: the same answer as a
patient who never bled. A record the service cannot read does not exclude what it says.
"""
from __future__ import annotations

from cql_equivalents.model import EngineInputs
from cql_equivalents.tables import tables

from . import card_kit as kit


def bleeding_labels() -> dict[str, str]:
    """Condition concept key -> label, for the concepts whose role is bleeding (data/conditions.toml)."""
    table = tables()
    concepts = [*table.snomed_to_condition.values(), *table.icd10_to_condition.values(),
                *(found for _, found in table.icd10_prefix_to_condition), *(found for _, found in table.words_to_condition)]
    return {concept.key: concept.label for concept in concepts if concept.role == "bleeding"}


def unreadable_bleeding_card(inputs: EngineInputs, base: str) -> dict | None:
    labels = bleeding_labels()
    unread = [item for item in inputs.rejected if item.input in labels]
    if not unread:
        return None
    label = labels[unread[0].input]
    summary = "Check the hemoptysis record: it cannot be read, so bleeding is not assessed"
    detail = kit.join(
        f"**{label.capitalize()} on record, not readable**: "
        + "; ".join(f"`{item.reference}`: {item.reason}" for item in unread[:5])
        + ". The service reads only valid FHIR R4, so it neither confirms nor excludes hemoptysis, and no "
        "escalation, reversal or severity assessment was made from this record.",
        "**Check the record** (or re-enter it) and assess at the bedside: SpO2, respiratory rate, blood pressure, "
        "heart rate and the volume expectorated. If hypoxic, in respiratory distress or hypotensive: airway first, "
        "bleeding side down, ICU, interventional radiology for bronchial artery embolisation.",
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "warning", detail, kit.source(base, "hemoptysis-record-unreadable"))
