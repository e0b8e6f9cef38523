"""A medication row's unit as shown, timing words and dose range are worked out once per row
(fhir_orders._medication_words): every order built from the row, first or later, for any target, reads them the same."""
from __future__ import annotations

import pytest

from hooks.cards.fhir_orders import OrderTarget, medication_request


@pytest.mark.parametrize("key, amount, text", [
    ("txa_iv", 500, "500 mg intravenous 3 times daily"),  # per_day 3
    ("methylprednisolone_pulse_iv", 1000, "1,000 mg intravenous once daily for 3 days"),  # per_day 1 for 3 days
    ("pcc_4f", 1750.0, "1,750 units (factor IX) intravenous once, at 8.4 mL/min (label rate)"),  # unit_display
    ("vitamin_k_iv", 10, "10 mg intravenous once"),
    ("fibrinogen_concentrate", 3, "3-4 g intravenous once"),  # the row's dose range, whatever the amount
])
def test_a_medication_order_reads_its_row_words_the_same_for_every_call(key, amount, text):
    targets = [OrderTarget(patient, f"enc-{patient}", "stat", (f"Condition/{patient}-1",), 70.0) for patient in ("p-1", "q-22")]
    for target in targets * 2:
        assert medication_request(key, target, amount)["dosageInstruction"][0]["text"] == text
