"""Coded members are validated once per process and reused (cql_equivalents/terminology_elements.py): the
verdict on a record is the one full fhir.resources validation gives, valid or not, and the same code in another
record is not validated again."""
from __future__ import annotations

import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from cql_equivalents import fhir_valid, terminology_elements
from tests.support import fhir_factory as f


def _plain_verdict(model, resource) -> str:
    """The verdict without the memo: the whole record through fhir.resources, as before."""
    broken = fhir_valid.json_problem(resource)
    if broken:
        return f"not valid FHIR JSON ({broken})"
    try:
        model.model_validate(resource)
        return ""
    except ValidationError as error:
        return fhir_valid.first_error(error)


def _cases() -> list[tuple[type, dict]]:
    spo2 = f.spo2(86)
    return [
        (Observation, spo2),
        (Observation, {**spo2, "code": {"coding": {"system": "http://loinc.org", "code": "59408-5"}}}),  # not a list
        (Observation, {**spo2, "code": {"coding": [{"system": "http://loinc.org", "code": 59408}]}}),  # code a number
        (Observation, {**spo2, "category": [{"coding": [{"code": "vital-signs", "userSelected": "yes"}]}]}),
        (Observation, {**spo2, "category": {"coding": []}}),  # a list member sent as an object
        (Observation, {**spo2, "code": {"text": "SpO2", "unknownMember": 1}}),
        (Observation, {**spo2, "issued": "not recorded"}),  # broken elsewhere, the codes fine
        (Observation, {key: value for key, value in spo2.items() if key != "status"}),  # a required member missing
        (Condition, f.hemoptysis()),
        (Condition, {**f.hemoptysis(), "clinicalStatus": {"coding": [{"system": 7}]}}),
    ]


@pytest.mark.parametrize("model,resource", _cases())
def test_the_verdict_is_the_full_validations(model, resource):
    terminology_elements.forget()
    fhir_valid.forget_verdicts()
    assert fhir_valid.problem(model, resource) == _plain_verdict(model, resource)
    fhir_valid.forget_verdicts()  # again, with the coded members now remembered
    assert fhir_valid.problem(model, resource) == _plain_verdict(model, resource)


def test_the_same_code_in_another_record_is_not_validated_again(monkeypatch):
    terminology_elements.forget()
    fhir_valid.forget_verdicts()
    from fhir.resources.R4B.codeableconcept import CodeableConcept
    validated = []
    original = CodeableConcept.model_validate.__func__

    def counting(cls, value, *args, **kwargs):
        validated.append(value)
        return original(cls, value, *args, **kwargs)

    monkeypatch.setattr(CodeableConcept, "model_validate", classmethod(counting))
    first, second = f.spo2(86), f.spo2(88)  # other id, value, time: the same code and category
    assert fhir_valid.problem(Observation, first) == ""
    once = len(validated)
    assert fhir_valid.problem(Observation, second) == ""
    assert once == 2 and len(validated) == once  # code and category, the first time only


def test_the_memo_is_bounded():
    terminology_elements.forget()
    for index in range(terminology_elements.MEMO_ENTRIES + 10):
        terminology_elements.with_known_codes(Observation, {**f.spo2(86), "code": {"text": f"local code {index}"}})
    assert len(terminology_elements._instances) <= terminology_elements.MEMO_ENTRIES
