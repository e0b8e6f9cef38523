"""An order's validity verdict is remembered by its recipe (fhir_orders.built): that is sound only while an order
built from the tables differs between two patients in its references alone, and a recipe never holds an id."""
from __future__ import annotations

import pytest

from hooks.cards import fhir_orders
from hooks.cards.fhir_orders import OrderTarget, built, medication_request, order_table, service_request

_REFERENCES = ("subject", "encounter", "reasonReference")


@pytest.fixture(autouse=True)
def empty_memos(monkeypatch):
    monkeypatch.setattr(fhir_orders, "_VERDICTS", {})
    monkeypatch.setattr(fhir_orders, "_BY_RECIPE", {})


def _targets(encounter: bool, reasons: int, weight: float | None) -> list[OrderTarget]:
    return [OrderTarget(patient, f"enc-{patient}" if encounter else None, "stat",
                        tuple(f"Condition/{patient}-{n}" for n in range(reasons)), weight) for patient in ("p-1", "q-22")]


def _recipes():
    for key in order_table().services:
        yield service_request, key, ("",)
        yield service_request, key, ("700 mL (10 mL/kg)",)
    for key, row in order_table().medications.items():
        if row.get("phased"):
            continue  # not remembered by recipe (suggestions.reversal_orders validates it by its shape)
        amount = row.get("dose", row.get("dose_low")) or 1.0
        yield medication_request, key, (amount, "")
        yield medication_request, key, (float(amount), f"{amount} mg IV once")


@pytest.mark.parametrize("encounter, reasons, weight", [(True, 1, 70.0), (False, 0, None), (True, 3, 41.5)])
def test_two_patients_of_one_recipe_differ_in_their_references_alone(encounter, reasons, weight):
    for build, key, args in _recipes():
        first, second = (built(build, key, target, *args) for target in _targets(encounter, reasons, weight))
        assert {k: v for k, v in first[0].items() if k not in _REFERENCES} == \
            {k: v for k, v in second[0].items() if k not in _REFERENCES}, key
        assert list(first[0]) == list(second[0]), key
        assert first[1] is True and second[1] is True, key  # every table order is valid FHIR R4
        fhir_orders._MODELS[second[0]["resourceType"]].model_validate(second[0])  # the second one too, validated
    assert not any("p-1" in repr(recipe) or "q-22" in repr(recipe) for recipe in fhir_orders._BY_RECIPE)


def test_a_recipe_differing_in_one_part_is_validated_apart():
    target = OrderTarget("p-1", "enc-1", "stat", ("Condition/c-1",), 70.0)
    key = next(iter(order_table().medications))
    variants = [(target, 500, ""), (target, 500.0, ""), (target, -0.0, ""), (target, 0.0, ""), (target, 500, "x"),
                (OrderTarget("p-1", None, "stat", ("Condition/c-1",), 70.0), 500, ""),
                (OrderTarget("p-1", "enc-1", "stat", (), 70.0), 500, ""),
                (OrderTarget("p-1", "enc-1", "urgent", ("Condition/c-1",), 70.0), 500, ""),
                (OrderTarget("p-1", "enc-1", "stat", ("Condition/c-1",), 70), 500, "")]
    for made_for, amount, text in variants:
        built(medication_request, key, made_for, amount, text)
    assert len(fhir_orders._BY_RECIPE) == len(variants)


def test_a_failed_recipe_stays_failed_and_never_covers_another():
    target = OrderTarget("p-1", "enc-1")

    def broken_order(key: str, made_for: OrderTarget, detail: str) -> dict:
        made = service_request(key, made_for, detail)
        made["priority"] = " stat"  # a FHIR code has no leading space
        return made

    key = next(iter(order_table().services))
    assert built(broken_order, key, target, "")[1] is False
    assert built(broken_order, key, OrderTarget("p-2", "enc-2"), "")[1] is False
    assert built(service_request, key, target, "")[1] is True



@pytest.mark.parametrize("key, amount, text", [
    ("txa_iv", 500, "500 mg intravenous 3 times daily"),  # per_day 3
    ("methylprednisolone_pulse_iv", 1000, "1,000 mg intravenous once daily for 3 days"),  # per_day 1 for 3 days
    ("pcc_4f", 1750.0, "1,750 units (factor IX) intravenous once, at 8.4 mL/min (label rate)"),  # unit_display
    ("vitamin_k_iv", 10, "10 mg intravenous once"),
    ("fibrinogen_concentrate", 3, "3-4 g intravenous once"),  # the row's dose range, whatever the amount
])
def test_a_medication_order_reads_its_row_words_the_same_for_every_call(key, amount, text):
    """The row's unit, timing and dose range are worked out once per row (fhir_orders._medication_words): each
    order built from the row, first or later, for any target, reads them the same."""
    for target in _targets(True, 1, 70.0) * 2:
        assert medication_request(key, target, amount)["dosageInstruction"][0]["text"] == text
