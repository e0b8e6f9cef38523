"""The shortcuts the readers take for speed read exactly as the long way: a candidate built straight from its
fields, the malformed-record guard, the dating of a record with absent members, and a question about a
resource type the chart has none of."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cql_equivalents.fhir_select import ResourcePool
from cql_equivalents.fhir_values import effective_time, parse_instant, time_of
from cql_equivalents.model import EngineInputs
from cql_equivalents.observation_reading import Candidate
from cql_equivalents.readers.record import skipped_if_malformed

NOW = datetime(2026, 12, 1, 19, 30, tzinfo=timezone.utc)


def test_a_candidate_built_from_every_field_equals_the_named_tuple_with_its_defaults():
    resource = {"resourceType": "Observation", "id": "o1"}
    built = tuple.__new__(Candidate, ("spo2", NOW, resource, None, "", None))
    assert built == Candidate("spo2", NOW, resource, None)
    assert type(built) is Candidate and built.note == "" and built.component is None
    # the readers pass every field positionally: a new field must be added there too
    assert Candidate._fields == ("input", "at", "resource", "component_code", "note", "component")


@pytest.mark.parametrize("error", [TypeError, AttributeError, ValueError, KeyError, IndexError, RecursionError])
def test_a_malformed_record_is_skipped_and_named(error):
    inputs = EngineInputs(now=NOW)
    with skipped_if_malformed(inputs, {"resourceType": "Condition", "id": "c1"}):
        raise error("bad")
    assert [(r.reference, r.reason) for r in inputs.rejected] == [
        ("Condition/c1", f"malformed FHIR ({error.__name__} while reading it): skipped")]


def test_another_error_is_not_swallowed_and_a_clean_read_names_nothing():
    inputs = EngineInputs(now=NOW)
    with pytest.raises(ZeroDivisionError):
        with skipped_if_malformed(inputs, {"resourceType": "Condition", "id": "c1"}):
            raise ZeroDivisionError
    with skipped_if_malformed(inputs, {"resourceType": "Condition", "id": "c2"}):
        pass
    assert inputs.rejected == []


EFFECTIVE_KEYS = ("effectiveDateTime", "effectiveInstant", "issued", "dateAsserted", "authoredOn", "recordedDate",
                  "onsetDateTime")
OWN_TIME_KEYS = ("performedDateTime", "started", "occurrenceDateTime", "authoredOn")


def _first_parsed(resource: dict, keys: tuple[str, ...]) -> datetime | None:
    """The long way: every member parsed in turn, absent ones too."""
    for key in keys:
        moment = parse_instant(resource.get(key))
        if moment:
            return moment
    return None


@pytest.mark.parametrize("key", sorted(set(EFFECTIVE_KEYS + OWN_TIME_KEYS)))
@pytest.mark.parametrize("before", [None, "", "2026", "2026-11", "2026-11-30T10:00:00+02:00", 20261130, ["x"], "nope"])
def test_a_time_is_read_from_the_first_member_that_parses_whatever_comes_before(key, before):
    for first in ("effectiveDateTime", "performedDateTime"):
        resource = {"resourceType": "Procedure", first: before} if first != key else {"resourceType": "Procedure"}
        resource[key] = "2026-11-30T08:00:00Z"
        assert effective_time(resource) == _first_parsed(resource, EFFECTIVE_KEYS)
        assert time_of(resource) == (_first_parsed(resource, OWN_TIME_KEYS) or _first_parsed(resource, EFFECTIVE_KEYS))


def test_a_question_about_a_type_the_chart_lacks_yields_nothing_and_builds_no_index():
    pool = ResourcePool()
    pool.add({"resourceType": "Observation", "id": "o1", "code": {"text": "x"}})
    asked = []
    assert list(pool.matching("Procedure", lambda resource: asked.append(resource) or True)) == []
    assert asked == [] and "Procedure" not in pool._code_indexes
    assert [resource["id"] for resource, _ in pool.matching("Observation", lambda resource: True)] == ["o1"]


def _all_agents():
    from cql_equivalents.tables import tables
    found = {agent.name: agent for agent in tables().rxnorm_to_agent.values()}
    found.update({agent.name: agent for _, agent in tables().name_to_agent})
    return sorted(found.values(), key=lambda agent: agent.name)


def _agents_never_a_flush():
    from cql_equivalents.drug_exposure import may_be_flush
    never = [agent for agent in _all_agents() if not may_be_flush(agent)]
    assert never and len(never) < len(_all_agents())  # heparin can be a flush; the others are the ones skipped
    return never


@pytest.mark.parametrize("agent", _agents_never_a_flush(), ids=lambda agent: agent.name)
def test_the_drug_words_are_skipped_only_for_an_agent_flush_reason_says_nothing_of(agent):
    from cql_equivalents.drug_exposure import flush_reason
    lock = {"resourceType": "MedicationStatement", "status": "active",
            "dosage": [{"text": "lock flush", "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "U", "code": "[iU]"}}]}]}
    for words in ("heparin lock flush 100 units/ml", "", "flush", agent.name, "10 units/ml lock"):
        assert flush_reason(lock, agent, words) is None
        assert flush_reason({**lock, "dosage": []}, agent, words) is None


def test_a_heparin_lock_is_still_named_a_flush():
    from cql_equivalents.drug_exposure import flush_reason, may_be_flush
    heparin = next(agent for agent in _all_agents() if agent.name == "heparin")
    lock = {"resourceType": "MedicationStatement", "status": "active",
            "dosage": [{"text": "lock flush", "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "U", "code": "[iU]"}}]}]}
    assert may_be_flush(heparin) and flush_reason(lock, heparin, "heparin lock flush 100 units/ml")
