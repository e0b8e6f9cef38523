"""The proposed orders' validity verdicts are remembered per process (fhir_orders.valid): a remembered verdict must
never stand for a resource that differs from the one validated, in any member but the blanked references; a
record of the patient's (a hold) is remembered by a digest, never as text; and the hold is a fresh copy."""
from __future__ import annotations

import copy

import pytest

from hooks.cards import fhir_orders, suggestions
from tests.support import fhir_factory as f


@pytest.fixture(autouse=True)
def empty_memo(monkeypatch):
    monkeypatch.setattr(fhir_orders, "_VERDICTS", {})
    monkeypatch.setattr(fhir_orders, "_SERVICE_VERDICTS", {})


def _order(patient: str = "pat-1") -> dict:
    made = suggestions.order("cta_chest", fhir_orders.OrderTarget(patient, "enc-1", "stat", ("Condition/c-1",)), True)
    return made["actions"][0]["resource"]


@pytest.mark.parametrize("member, broken", [
    ("priority", " stat"),  # a FHIR code has no leading space
    ("status", "draft "),  # nor a trailing one
    ("intent", 7),
    ("note", [{"txt": "a misspelt member"}]),
    ("code", {"text": ["a list"]}),
])
def test_a_remembered_verdict_never_covers_an_order_differing_in_one_member(member, broken):
    good = _order()
    assert fhir_orders.valid(good)
    bad = {**good, member: broken}
    assert not fhir_orders.valid(bad)  # validated, not taken from the memo
    assert fhir_orders.valid(good) and not fhir_orders.valid(bad)  # each keeps its own verdict
    assert len(fhir_orders._VERDICTS) == 2


def test_a_remembered_failure_never_covers_the_valid_order():
    good = _order()
    assert not fhir_orders.valid({**good, "priority": " stat"})
    assert fhir_orders.valid(good)


def test_the_verdict_is_shared_across_patients_and_encounters_but_not_across_reference_members():
    assert fhir_orders.valid(_order("pat-1"))
    assert fhir_orders.valid(_order("pat-2"))
    assert len(fhir_orders._VERDICTS) == 1  # only the references differ: one shape
    without_encounter = {key: value for key, value in _order().items() if key != "encounter"}
    assert fhir_orders.valid(without_encounter)
    assert len(fhir_orders._VERDICTS) == 2
    assert all(b"pat-" not in key for key in fhir_orders._VERDICTS)


def test_a_member_named_like_the_shape_markers_cannot_pose_as_them():
    """The shape's reference list and reason count sit beside the resource's members: a resource carrying members
    that mimic them (not FHIR: rejected) never shares the valid order's verdict."""
    good = _order()
    assert fhir_orders.valid(good)
    mimic = {**good, "_references": ["subject", "encounter", "reasonReference"], "_reasons": 1}
    assert not fhir_orders.valid(mimic)


def test_a_held_record_is_remembered_by_a_digest_and_each_variant_validated():
    record = f.medication_request("855332", "Warfarin Sodium 5 MG Oral Tablet", patient_id="pat-77", med_id="mr-77")
    held = suggestions.hold_active_order(record, "warfarin", "stop the drug", True)
    assert held is not None and held["actions"][0]["resource"]["status"] == "on-hold"
    assert all(len(key) == 32 and b"mr-77" not in key and b"Warfarin" not in key for key in fhir_orders._VERDICTS)
    bad = {**record, "authoredOn": "not a date"}
    assert suggestions.hold_active_order(bad, "warfarin", "stop the drug", True) is None
    assert suggestions.hold_active_order(record, "warfarin", "stop the drug", True) is not None


def test_the_hold_is_a_fresh_copy_equal_to_a_deep_copy():
    record = f.medication_request("855332", "Warfarin Sodium 5 MG Oral Tablet", med_id="mr-78")
    record["dosageInstruction"] = [{"text": "5 mg daily", "doseAndRate": [{"doseQuantity": {"value": 5.0}}]}]
    before = copy.deepcopy(record)
    held = suggestions.hold_active_order(record, "warfarin", "stop the drug")["actions"][0]["resource"]
    assert {k: v for k, v in held.items() if k not in ("status", "statusReason")} == {
        k: v for k, v in before.items() if k != "status"}
    held["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 10.0
    held["medicationCodeableConcept"]["coding"].append({"code": "x"})
    assert record == before  # nothing of the patient's record is shared with the answer
    assert suggestions.json_copy(before) == copy.deepcopy(before)


def test_every_order_is_written_resource_type_first_and_its_notes_in_order():
    """The orders are built in one dict each: members in the order FHIR examples use, and the notes as they read
    (the source, then 'uncoded', then the amount computed from the record)."""
    from cql_equivalents.tables import load

    target = fhir_orders.OrderTarget("pat-1", "enc-1", "stat", ("Condition/c-1",), 70.0)
    common = ["resourceType", "status", "intent", "priority", "subject", "reasonCode", "note", "encounter",
              "reasonReference"]
    table = fhir_orders.order_table()
    service = fhir_orders.service_request("cta_chest", target, "700 mL")
    assert list(service) == [*common, "code"]
    assert [note["text"].split(":")[0] for note in service["note"]] == [
        "Proposed by hemoptysis-cds. Source", "Uncoded order", "700 mL"]
    for key, row in table.medications.items():
        if row.get("phased"):
            resource, _ = fhir_orders.phased_request(key, target, load("reversal")[row["phased"]][0]["bolus_mg"])
        else:
            resource = fhir_orders.medication_request(key, target, row.get("dose", row.get("dose_low")) or 1.0)
        assert list(resource) == [*common, "medicationCodeableConcept", "dosageInstruction"], key
        uncoded = [note for note in resource["note"] if note["text"].startswith("Uncoded order")]
        coded = row.get("rxnorm") and not row.get("phased")  # a phased order is written with its text only
        assert len(resource["note"]) == 1 + len(uncoded) and len(uncoded) == (0 if coded else 1), key
    bare = fhir_orders.service_request("cta_chest", fhir_orders.OrderTarget("pat-1"))
    assert list(bare) == ["resourceType", "status", "intent", "priority", "subject", "reasonCode", "note", "code"]


def test_json_copy_equals_a_deep_copy_and_shares_no_container():
    """Over random parsed-JSON-like values (and a str subclass, a tuple, a set: deep-copied as copy.deepcopy does)."""
    import enum
    import random

    class Kind(str, enum.Enum):
        A = "a"

    rng = random.Random(7)
    leaves = ["x", "", 0, 1, -2**70, 1.5, -0.0, float("inf"), True, False, None, Kind.A, (1, [2]), {3}]

    def value(depth: int):
        if depth == 0 or rng.random() < 0.3:
            return rng.choice(leaves)
        if rng.random() < 0.5:
            return [value(depth - 1) for _ in range(rng.randrange(0, 4))]
        return {f"k{index}": value(depth - 1) for index in range(rng.randrange(0, 4))}

    def containers(item) -> list:
        if isinstance(item, dict):
            return [item, *(c for member in item.values() for c in containers(member))]
        if isinstance(item, (list, tuple, set)):
            return [item, *(c for member in item for c in containers(member))]
        return []

    for _ in range(2000):
        original = value(5)
        copied = suggestions.json_copy(original)
        assert copied == copy.deepcopy(original) and type(copied) is type(original)
        assert not {id(c) for c in containers(copied)} & {id(c) for c in containers(original)}


def _blanked(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key not in ("subject", "encounter", "reasonReference")}


def test_a_service_order_is_a_function_of_its_recipe_and_its_verdict_the_shapes():
    """Every ServiceRequest row, for each priority, encounter or none, 0-2 reasons and a detail or none: two patients
    of one recipe give orders differing in their references alone, and the verdict by recipe is the validator's."""
    import itertools

    for key, priority, encounter, reasons, detail in itertools.product(
            fhir_orders.order_table().services, ("stat", "urgent", " stat"), (None, "", "enc-1"),
            ((), ("Condition/c-1",), ("Condition/c-1", "Condition/c-2")), ("", "700 mL")):
        made = []
        for patient, suffix in (("pat-1", ""), ("other-patient", "-b")):
            target = fhir_orders.OrderTarget(patient, encounter and encounter + suffix, priority,
                                             tuple(reference + suffix for reference in reasons))
            made.append(fhir_orders.service_request(key, target, detail))
            fhir_orders._VERDICTS.clear()  # the validator itself, not the shape memo
            assert fhir_orders.service_valid(key, target, detail, made[-1]) == fhir_orders.valid(made[-1]) \
                == (priority != " stat"), (key, priority)
        assert _blanked(made[0]) == _blanked(made[1]) and list(made[0]) == list(made[1])
        assert made[0] != made[1]  # the references do differ


def test_a_service_recipe_differing_in_one_part_is_validated_apart():
    target = fhir_orders.OrderTarget("pat-1", "enc-1", "stat", ("Condition/c-1",))
    good = suggestions.order("cta_chest", target, True)
    bad_target = fhir_orders.OrderTarget("pat-1", "enc-1", " stat", ("Condition/c-1",))
    assert suggestions.order("cta_chest", bad_target, True) is None  # a remembered success never covers it
    assert suggestions.order("cta_chest", target, True) == good  # nor a remembered failure the good one
    assert len(fhir_orders._SERVICE_VERDICTS) == 2
    for other in (fhir_orders.OrderTarget("pat-1", None, "stat", ("Condition/c-1",)),
                  fhir_orders.OrderTarget("pat-1", "enc-1", "stat", ()),
                  fhir_orders.OrderTarget("pat-1", "enc-1", "stat", ("Condition/c-1", "Condition/c-2"))):
        assert suggestions.order("cta_chest", other, True) is not None
    assert suggestions.order("cta_chest", target, True, "700 mL") is not None
    assert suggestions.order("ir_bae", target, True) is not None
    assert len(fhir_orders._SERVICE_VERDICTS) == 7
