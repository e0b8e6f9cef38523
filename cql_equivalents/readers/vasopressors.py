"""Vasopressors of the SOFA cardiovascular score (calculators.toml [vasopressor]): running infusions, active
orders, and completed administrations of the last day, with the rate when charted in ug/kg/min."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ..code_memo import CodeMemo
from ..concept_match import coded_words, match_concept
from ..code_memo import remembered
from ..fhir_select import ResourcePool
from ..fhir_values import effective_time
from ..model import EngineInputs, VasopressorUse
from ..tables import RXNORM, load
from .record import medication_concept, reference_of, skipped_if_malformed

RATE_UNITS = frozenset({"ug/kg/min", "mcg/kg/min", "ug/(kg.min)", "ug/kg/min{drip}"})
VASOPRESSOR_WINDOW = timedelta(hours=load("calculators")["vasopressor_window"]["hours"])  # calculators.toml


_VASOPRESSORS = CodeMemo("drug concept -> vasopressor")


def vasopressor_of(concept: Any) -> tuple[dict, str] | None:
    """The calculators.toml vasopressor a medication concept names; remembered per distinct concept."""
    return remembered(_VASOPRESSORS, concept, _vasopressor_of)


def _vasopressor_of(concept: Any) -> tuple[dict, str] | None:
    rows = load("calculators")["vasopressor"]

    def by_code(system: Any, code: str) -> tuple[dict, str] | None:
        row = next((row for row in rows if system == RXNORM and code in row["rxnorm"]), None)
        return (row, "code") if row else None

    def by_words(text: str) -> tuple[dict, str] | None:
        row = next((row for row in rows if any(word in text for word in row["words"])), None)
        return (row, "text (no recognised code)") if row else None

    return match_concept([concept], site_space="drug",
                         site_row=lambda name: next((row for row in rows if row["name"] == name), None),
                         code_row=by_code, words=lambda: coded_words(concept), word_row=by_words)


def read_vasopressors(pool: ResourcePool, inputs: EngineInputs) -> None:
    for resource_type in ("MedicationAdministration", "MedicationRequest"):
        for raw in pool.of(resource_type):
            with skipped_if_malformed(inputs, raw):
                if resource_type == "MedicationAdministration":
                    at = effective_time(raw)
                    if raw.get("status") != "in-progress" and not (
                            raw.get("status") == "completed" and at and inputs.now - at <= VASOPRESSOR_WINDOW):
                        continue
                    dosage = raw.get("dosage") if isinstance(raw.get("dosage"), Mapping) else {}
                    rate_quantity = dosage.get("rateQuantity") if isinstance(dosage.get("rateQuantity"), Mapping) else {}
                elif raw.get("status") != "active":
                    continue
                else:
                    rate_quantity = {}
                match = vasopressor_of(medication_concept(raw, pool))  # also a medicationReference (MIMIC, Epic)
                if match is None:
                    continue
                row, matched_by = match
                unit = rate_quantity.get("code") or rate_quantity.get("unit")
                rate = rate_quantity.get("value") if unit in RATE_UNITS else None
                inputs.vasopressors.append(VasopressorUse(row["name"], reference_of(raw), rate, matched_by,
                                                          effective_time(raw), raw.get("status") != "completed"))
