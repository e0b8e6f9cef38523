"""Work follows what is used (issue 16): `ResourcePool.matching` answers like classifying each resource alone, the
falsy ones left out, a code's meaning is kept per process (bounded, started over with the site ConceptMap), and the fast
FHIR JSON check gives the same verdict as the one that names the path."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from cql_equivalents import code_memo, fhir_valid, terminology
from cql_equivalents.fhir_select import pool_from_values
from tests.support import fhir_factory as f


def _pool(resources):
    return pool_from_values({"vitals": f.searchset(resources)})


def test_matching_yields_the_truthy_answers_of_each_resource_in_chart_order():
    described = {**f.spo2(90), "description": "bronchoscopy"}
    broken = {**f.spo2(70), "code": {"coding": ["59408-5"]}}  # classified on its own
    resources = [f.spo2(91), f.heart_rate(80), described, f.spo2(88), broken, f.respiratory_rate(20), f.spo2(86)]
    pool = _pool(resources)

    def classify(resource):
        coding = resource["code"]["coding"][0]
        if resource.get("description"):
            return "described"
        return coding if type(coding) is str else ("spo2" if coding["code"] == "59408-5" else None)

    expected = [(resource["id"], classify(resource)) for resource in resources if classify(resource)]
    found = [(resource["id"], result) for resource, result in
             pool.matching("Observation", classify, also_reads=("description",))]
    assert found == expected  # what classifying every resource alone gives, the falsy ones left out
    assert [result for _, result in found] == ["spo2", "described", "spo2", "59408-5", "spo2"]


def test_a_code_is_classified_once_per_process_not_once_per_call():
    memo = code_memo.CodeMemo("test question")
    seen: list[str] = []

    def classify(resource):
        seen.append(resource["id"])
        return resource["code"]["coding"][0]["code"] == "59408-5"

    for _ in range(3):  # three calls, each a new pool with the same two codes
        pool = _pool([f.spo2(91), f.heart_rate(80), f.spo2(88)])
        assert len(list(pool.matching("Observation", classify, memo=memo))) == 2
    assert len(seen) == 2 and len(memo) == 2


def test_a_resource_read_by_more_than_its_code_is_remembered_by_those_members_too():
    memo = code_memo.CodeMemo("code and description")
    seen: list[str] = []

    def classify(resource):
        seen.append(resource["id"])
        return resource.get("description") if resource.get("description", "").startswith("bronch") else None

    for _ in range(3):  # three calls: one code, two descriptions, one of them told apart only by its description
        pool = _pool([{**f.spo2(91), "description": "bronchoscopy"}, {**f.spo2(88), "description": "chest film"},
                      {**f.spo2(86), "description": "bronchial artery angiogram"}])
        found = [(resource["description"], result) for resource, result in
                 pool.matching("Observation", classify, also_reads=("description",), memo=memo)]
        assert found == [("bronchoscopy", "bronchoscopy"), ("bronchial artery angiogram", "bronchial artery angiogram")]
    assert len(seen) == 3  # each distinct (code, description) once per process, not once per call
    assert all(type(key) is tuple for key in memo.answers())  # keyed by digest: no description text is kept
    assert not any(b"bronch" in key[1] for key in memo.answers())


def test_the_memo_is_bounded_and_starts_over_with_another_site_concept_map():
    memo = code_memo.CodeMemo("bounded")
    answers = memo.answers()
    for number in range(code_memo.MAX_CODES):
        answers[number] = True
    assert len(memo.answers()) == 0  # full: started over, never growing with made-up codes
    memo.answers()["x"] = True
    before = terminology.active()
    try:
        terminology.install(terminology.SiteTerminology(name="another"))
        assert "x" not in memo.answers()
    finally:
        terminology.install(before)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "value", "unit", "code", "comparator", "valueInteger", "valueDecimal", "resourceType",
                         "extension", "coding", "x"]), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["resourceType", "id", "valueQuantity", "component", "extension"]), _json,
                       max_size=5))
def test_the_fast_json_check_agrees_with_the_one_that_names_the_path(resource):
    assert fhir_valid._breaks_no_rule(resource) == (fhir_valid._first_broken_rule(resource) is None)


def test_a_record_nested_too_deep_is_still_named():
    deep: dict = {"resourceType": "Observation", "id": "x"}
    node = deep
    for _ in range(fhir_valid.MAX_DEPTH + 2):
        node["extension"] = [{"url": "u"}]
        node = node["extension"][0]
    assert "nested deeper than" in fhir_valid.json_problem(deep)


def test_a_drug_concept_is_recognised_once_per_process_and_told_apart_by_any_member(monkeypatch):
    from cql_equivalents import drug_terms
    from cql_equivalents.readers import support, vasopressors

    for module, question, memo_name, compute_name, drug in (
            (drug_terms, drug_terms.agent_of, "_AGENTS", "_agent_of", "apixaban 5 mg tablet"),
            (vasopressors, vasopressors.vasopressor_of, "_VASOPRESSORS", "_vasopressor_of", "norepinephrine infusion"),
            (support, support._vasoactive_row, "_VASOACTIVE_ROWS", "_vasoactive_row_of", "phenylephrine infusion")):
        monkeypatch.setattr(module, memo_name, code_memo.CodeMemo("test"))
        computed: list[str] = []
        real = getattr(module, compute_name)
        monkeypatch.setattr(module, compute_name, lambda concept, real=real, computed=computed: computed.append(concept["text"]) or real(concept))
        named = {"text": drug}
        other = {"text": "paracetamol 1 g"}
        answers = [question(concept) for concept in (named, other, named, other, dict(named))]
        assert answers[0] is not None and answers[1] is None  # told apart by the text alone
        assert answers[2] == answers[0] == answers[4] and answers[3] is None
        assert computed == [named["text"], other["text"]]  # each distinct concept worked out once
