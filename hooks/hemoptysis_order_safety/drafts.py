"""The draft orders the order-sign guard watches: the hook's `context.draftOrders` Bundle read leniently (a bad
entry is named on its card, never a 500), each draft an antithrombotic or an antifibrinolytic (order_safety.toml).

CDS Hooks 2.0 prefetch tokens cannot traverse `draftOrders`, so the drafts are read from the context and the
patient's conditions from prefetch (or the FHIR server).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest

from cql_equivalents.drug_exposure import flush_reason
from cql_equivalents.drug_terms import concept_words
from cql_equivalents.concept_match import coded_words, match_concept
from cql_equivalents.fhir_values import concept_text
from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents import fhir_valid
from cql_equivalents.drug_terms import agent_of
from cql_equivalents.readers.record import medication_concept
from cql_equivalents.patient_binding import foreign_reason
from cql_equivalents.tables import ATC_SYSTEMS, RXNORM, Agent, load

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
        problem = fhir_valid.problem(MedicationRequest, raw)
        resource_id = raw.get("id")
        drafts.append(DraftOrder(
            reference=f"MedicationRequest/{resource_id}" if isinstance(resource_id, str) and resource_id else None,
            text=concept_text(concept) or (match[0].name if match else SAFETY["antifibrinolytic"]["name"]),
            agent=match[0] if match else None, antifibrinolytic=antifibrinolytic,
            matched_by=match[1] if match else matched_by, problem=problem))
    return drafts
