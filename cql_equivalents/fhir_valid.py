"""Validation of the records a value is taken from: fhir.resources, plus the FHIR R4 JSON rules it lets through.

fhir.resources (pydantic, lax mode) accepts a Quantity value sent as the string "86", a member set to null
(`unit: null`, `subject: null`) and a resource id of any length, and recurses without bound into nested
Extensions (RecursionError). FHIR R4 JSON (§2.6.2) forbids all of these: null is never a member's value,
numbers are JSON numbers, `id` is [A-Za-z0-9\\-.]{1,64}. A record breaking them is rejected and named, never
read. The walk below is iterative and bounded in depth, and runs before the model is built.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from .fhir_select import UNREADABLE  # the marker a record with repeated JSON names carries

MAX_DEPTH = 32  # deepest legitimate nesting is ~10 (contained resource > extension > extension > value)
_RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_NUMERIC_ELEMENTS = frozenset({"valueInteger", "valueDecimal", "valuePositiveInt", "valueUnsignedInt"})
# members whose presence with `value` tells a Quantity (its value is a number) from an Identifier (a string)
_QUANTITY_MARKERS = ("unit", "code", "comparator")

# How many records were validated in this process (tests read it to check that work follows what is used).
validations = 0


def json_problem(resource: Any) -> str | None:
    """The first FHIR R4 JSON rule this record breaks that fhir.resources would let through, or None."""
    if type(resource) is not dict:
        return "not a JSON object"
    if UNREADABLE in resource:
        return str(resource[UNREADABLE])
    if _breaks_no_rule(resource):
        return None  # the usual case: checked without naming a path
    return _first_broken_rule(resource)


def _breaks_no_rule(resource: dict) -> bool:
    """The walk of `_first_broken_rule` without building a path for every member (most records break no rule;
    the path is only worth building to name the one that does). Same rules, same depth bound."""
    stack: list[tuple[Any, int]] = [(resource, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if depth > MAX_DEPTH:
            return False
        if type(item) is dict:
            if "resourceType" in item and "id" in item:
                found = item["id"]
                if type(found) is not str or not _RESOURCE_ID.fullmatch(found):
                    return False
            value = item.get("value")
            if type(value) is str and any(marker in item for marker in _QUANTITY_MARKERS):
                return False
            for name, member in item.items():
                kind = type(member)
                if member is None or (name in _NUMERIC_ELEMENTS and kind is not int and kind is not float):
                    return False
                if kind is dict or kind is list:
                    push((member, depth + 1))
        else:
            for member in item:
                kind = type(member)
                if kind is dict or kind is list:
                    push((member, depth + 1))
    return True


def _first_broken_rule(resource: dict) -> str | None:
    stack: list[tuple[Any, str, int]] = [(resource, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels at {path or 'the root'}"
        if type(item) is dict:
            if "resourceType" in item and "id" in item:
                found = item["id"]
                if type(found) is not str or not _RESOURCE_ID.fullmatch(found):
                    return (f"{path + '.' if path else ''}id is not a FHIR id (1-64 letters, digits, '-' or '.')")
            value = item.get("value")
            if type(value) is str and any(marker in item for marker in _QUANTITY_MARKERS):
                return f"{path}.value is the string {value[:20]!r}, not a number"
            for name, member in item.items():
                where = f"{path}.{name}" if path else name
                if member is None:
                    return f"{where} is null (FHIR JSON never sends null)"
                if name in _NUMERIC_ELEMENTS and (type(member) not in (int, float)):
                    return f"{where} is not a JSON number"
                if type(member) in (dict, list):
                    stack.append((member, where, depth + 1))
        elif type(item) is list:
            for index, member in enumerate(item):
                if type(member) in (dict, list):
                    stack.append((member, f"{path}[{index}]", depth + 1))
    return None


def first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"not valid FHIR R4 ({where}: {first.get('msg')})" if where else f"not valid FHIR R4 ({first.get('msg')})"


def validate(model: type[BaseModel], resource: Any) -> tuple[BaseModel | None, str]:
    """(the model, "") or (None, why it is not valid FHIR R4). Never raises for bad content."""
    global validations
    validations += 1
    problem = json_problem(resource)
    if problem:
        return None, f"not valid FHIR JSON ({problem})"
    try:
        return model.model_validate(resource), ""
    except ValidationError as error:
        return None, first_error(error)
    except (RecursionError, TypeError, ValueError) as error:  # content the model's own code trips on
        return None, f"not valid FHIR R4 ({type(error).__name__})"
