"""Validation of the records a value is taken from: fhir.resources, plus the FHIR R4 JSON rules it lets through.

fhir.resources (pydantic, lax mode) accepts a Quantity value sent as the string "86", a member set to null
(`unit: null`, `subject: null`) and a resource id of any length, and recurses without bound into nested
Extensions (RecursionError). FHIR R4 JSON (§2.6.2) forbids all of these: null is never a member's value,
numbers are JSON numbers, `id` is [A-Za-z0-9\\-.]{1,64}. A record breaking them is rejected and named, never
read. The walk below is iterative and bounded in depth, and runs before the model is built.

Only the verdict is kept ("" or why not), never the model: readers read the raw JSON once it is known valid. The
verdict depends on nothing but the record's content and the model class, so it is remembered per process
(`_VerdictMemo`): an EHR sends the same records again and again (each chart opening, each order signed), and
building the fhir.resources model graph (~170 us for one Observation, ~95 nested models) is the largest cost of a
small call. The memo holds a keyed hash of the content (a per-process random key: no patient data is kept and
no digest can be matched outside the process) and the verdict text, at most MEMO_ENTRIES of them.
"""
from __future__ import annotations

import hashlib
import os
import re
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from .fhir_select import UNREADABLE  # the marker a record with repeated JSON names carries
from .terminology_elements import with_known_codes

MAX_DEPTH = 32  # deepest legitimate nesting is ~10 (contained resource > extension > extension > value)
_RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_NUMERIC_ELEMENTS = frozenset({"valueInteger", "valueDecimal", "valuePositiveInt", "valueUnsignedInt"})
# members whose presence with `value` tells a Quantity (its value is a number) from an Identifier (a string)
_QUANTITY_MARKERS = ("unit", "code", "comparator")

# How many records were asked about in this process, and how many of those built the fhir.resources model (a memo
# miss). Tests read both: the first follows what the engine uses, the second what it had not seen before.
validations = 0
models_built = 0
MEMO_ENTRIES = 65_536  # ~100 bytes each (digest, verdict, dict slot): ~7 MB per worker at most


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


class _VerdictMemo:
    """Verdicts by keyed content digest, oldest dropped first past MEMO_ENTRIES. Safe across threads: each step is
    one dict operation under the GIL, and a lost race only costs a second validation."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._verdicts: dict[bytes, str] = {}
        self._key = os.urandom(32)
        # per model, the keyed hash already fed the model's name: a copy of it is half the cost of keying a new
        # one (2.1 against 4.7 us for an Observation here); the digest is the same
        self._keyed: dict[str, Any] = {}

    def digest(self, model: type[BaseModel], resource: dict) -> bytes | None:
        # The parser's own output: str keys, JSON values, key order as sent (another order is only a miss). orjson
        # writes NaN as null, but the body parser refuses NaN (server/http/jsonio.py), so no two records merge.
        try:
            text = orjson.dumps(resource)
        except (TypeError, ValueError, RecursionError):
            return None  # not plain JSON (an int past 64 bits, nesting past orjson's limit): never remembered
        keyed = self._keyed.get(model.__name__)
        if keyed is None:
            keyed = self._keyed[model.__name__] = hashlib.blake2b(model.__name__.encode() + b"\x00", key=self._key,
                                                                  digest_size=20)
        hasher = keyed.copy()
        hasher.update(text)
        return hasher.digest()

    def get(self, digest: bytes) -> str | None:
        return self._verdicts.get(digest)

    def put(self, digest: bytes, verdict: str) -> None:
        verdicts = self._verdicts
        if len(verdicts) >= self.entries:
            try:
                verdicts.pop(next(iter(verdicts)), None)
            except (StopIteration, RuntimeError):  # emptied or resized by another thread meanwhile
                pass
        verdicts[digest] = verdict

    def clear(self) -> None:
        self._verdicts.clear()


_memo = _VerdictMemo(MEMO_ENTRIES)


def problem(model: type[BaseModel], resource: Any) -> str:
    """"" when the record is valid FHIR R4 for `model` (fhir.resources and the JSON rules above), else why not.
    Never raises for bad content."""
    global validations
    validations += 1
    if type(resource) is not dict or UNREADABLE in resource:
        return _verdict(model, resource)
    digest = _memo.digest(model, resource)
    if digest is not None:
        known = _memo.get(digest)
        if known is not None:
            return known
    verdict = _verdict(model, resource)
    if digest is not None:
        _memo.put(digest, verdict)
    return verdict


def _verdict(model: type[BaseModel], resource: Any) -> str:
    global models_built
    broken = json_problem(resource)
    if broken:
        return f"not valid FHIR JSON ({broken})"
    models_built += 1
    try:
        model.model_validate(with_known_codes(model, resource))  # coded members validated once per process
        return ""
    except ValidationError as error:
        return first_error(error)
    except (RecursionError, TypeError, ValueError) as error:  # content the model's own code trips on
        return f"not valid FHIR R4 ({type(error).__name__})"


def forget_verdicts() -> None:
    """Tests that count models built start from an empty memo."""
    _memo.clear()
