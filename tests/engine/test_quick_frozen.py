"""quick_frozen's __init__ must build exactly what the dataclass's own __init__ builds, for every class it decorates."""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field

import pytest

from cql_equivalents import fhir_select, model, observation_reading, results
from cql_equivalents.quick_frozen import quick_frozen
from hooks.cards import fhir_orders

DECORATED = [model.Observed, model.MedicationUse, model.ConditionFact, model.SourceEvidence, observation_reading.Choice,
             fhir_select.CodeIndex, results.DoseLine, results.TriggerFired, results.RuleApplied, results.OrderLine,
             results.PopulationMatch, results.PlanContext, results.CareContext, fhir_orders.OrderTarget]


def _reference_class(cls):
    """The same fields, with the dataclass's own __init__."""
    fields = [(f.name, f.type, field(default=f.default) if f.default is not dataclasses.MISSING else
               field(default_factory=f.default_factory) if f.default_factory is not dataclasses.MISSING else field())
              for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(f"Reference{cls.__name__}", fields, frozen=True)


@pytest.mark.parametrize("cls", DECORATED, ids=lambda cls: cls.__name__)
def test_same_signature_and_values_as_the_dataclass_init(cls):
    reference = _reference_class(cls)
    def parameters(init):
        return [(p.name, p.kind, repr(p.default)) for p in inspect.signature(init).parameters.values()]
    assert parameters(cls.__init__) == parameters(reference.__init__)
    names = [f.name for f in dataclasses.fields(cls)]
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    marks = {name: f"value-{index}" for index, name in enumerate(names)}
    # only the required fields: defaults and factories as the dataclass makes them
    built, expected = cls(**{name: marks[name] for name in required}), reference(**{name: marks[name] for name in required})
    assert vars(built) == vars(expected)
    # every field passed, positionally
    built = cls(*(marks[name] for name in names))
    assert [getattr(built, name) for name in names] == [marks[name] for name in names]
    assert built == cls(*(marks[name] for name in names))  # the dataclass's eq still applies
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, names[0], "changed")
    changed = dataclasses.replace(built, **{names[-1]: "other"})
    assert getattr(changed, names[-1]) == "other" and getattr(built, names[-1]) == marks[names[-1]]


def test_a_missing_or_unknown_argument_is_refused_as_by_the_dataclass():
    with pytest.raises(TypeError):
        model.Observed("spo2", "SpO2", 86.0, "%", None)  # no reference
    with pytest.raises(TypeError):
        model.Observed("spo2", "SpO2", 86.0, "%", None, "Observation/1", colour="red")


def test_a_default_factory_gives_each_instance_its_own_value():
    first = fhir_select.CodeIndex([], [])
    second = fhir_select.CodeIndex([], [])
    first.groups.append([1])
    assert second.groups == [] and first.groups is not second.groups


def test_classes_it_cannot_copy_exactly_are_refused():
    with pytest.raises(TypeError):
        @quick_frozen
        @dataclass
        class NotFrozen:
            a: int
    with pytest.raises(TypeError):
        @quick_frozen
        @dataclass(frozen=True)
        class WithPostInit:
            a: int

            def __post_init__(self):
                pass
    with pytest.raises(TypeError):
        @quick_frozen
        @dataclass(frozen=True)
        class KeywordOnly:
            a: int = field(kw_only=True)
    with pytest.raises(TypeError):
        @quick_frozen
        @dataclass(frozen=True)
        class NamedLikeItsLocal:
            _instance_values: int
