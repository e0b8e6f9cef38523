"""The coded elements of a record (CodeableConcept, Coding) validated once per process, not once per record.

A chart repeats the same codes in every record (LOINC 59408-5 with its display, the vital-signs category): an
Observation's code and category are a third of the cost of validating it with fhir.resources (~60 of ~170 us).
So before a record is validated (fhir_valid), each coded element is replaced by the fhir.resources instance made
when that exact JSON was first validated; pydantic takes an instance of the field's own type as it is, and
every rule of the record itself (required members, one value[x], unknown members, nulls) still runs on the
record. An element that is not valid alone is left as sent, so the record's validation names it as before.

Only coded elements are remembered (a code names a concept, not a patient), at most MEMO_ENTRIES distinct ones;
never a Reference, a value or a time.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, ValidationError

MEMO_ENTRIES = 4096
_CODED_TYPES = ("CodeableConcept", "Coding")

_instances: dict[tuple[str, bytes], BaseModel] = {}
_lock = threading.Lock()


@functools.cache
def coded_fields(model: type[BaseModel]) -> tuple[tuple[str, type[BaseModel], bool], ...]:
    """(JSON name, element model, is a list) of every CodeableConcept / Coding member of this resource model."""
    found = []
    for name, field in model.model_fields.items():
        annotation = repr(field.annotation)
        for type_name in _CODED_TYPES:
            if f"abc.{type_name}Type" in annotation:
                found.append((field.alias or name, get_fhir_model_class(type_name), "List[" in annotation))
                break
    return tuple(found)


def _instance(element_model: type[BaseModel], value: dict) -> BaseModel | None:
    try:
        key = (element_model.__name__, orjson.dumps(value))
    except TypeError:  # nested past orjson's limit: validated with the record, as sent
        return None
    known = _instances.get(key)
    if known is not None:
        return known
    try:
        built = element_model.model_validate(value)
    except (ValidationError, RecursionError, TypeError, ValueError):
        return None  # left as sent: the record's own validation says what is wrong with it
    with _lock:
        if len(_instances) >= MEMO_ENTRIES:
            _instances.clear()  # a body of made-up codes starts the memo over, never unbounded memory
        _instances[key] = built
    return built


def with_known_codes(model: type[BaseModel], resource: dict) -> dict:
    """The record with each coded member that is valid alone replaced by its validated instance (a new dict;
    the record itself is not changed)."""
    replaced: dict[str, Any] = {}
    for name, element_model, is_list in coded_fields(model):
        value = resource.get(name)
        if value is None:
            continue
        if is_list:
            if type(value) is not list or not value or any(type(item) is not dict for item in value):
                continue
            built = [_instance(element_model, item) for item in value]
            if all(item is not None for item in built):
                replaced[name] = built
        elif type(value) is dict:
            one = _instance(element_model, value)
            if one is not None:
                replaced[name] = one
    return {**resource, **replaced} if replaced else resource


def forget() -> None:
    with _lock:
        _instances.clear()
