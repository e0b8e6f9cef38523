"""What every reader does with one FHIR record: name it, validate it or reject it, judge its time (future-dated,
stale), find the drug it names, and skip it (not the call) when its content is malformed. When a record
happened is read by fhir_values (effective_time, time_of)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from .. import fhir_valid
from ..fhir_select import ResourcePool
from ..fhir_values import codings, concept_text
from ..model import EngineInputs
from ..observation_reading import FUTURE_TOLERANCE
from ..durations import hours

# What reading a malformed value raises (a list where a code belongs, an int where a list belongs, nesting too
# deep). The record is skipped and named; the other records, and the other cards, are read as usual.
MALFORMED = (TypeError, AttributeError, ValueError, KeyError, IndexError, RecursionError)


def reference_of(resource: Mapping[str, Any]) -> str:
    found = resource.get("id", "(no id)")
    shown = found if type(found) is str and len(found) <= 64 else "(id not valid)"
    return f"{resource.get('resourceType')}/{shown}"


class skipped_if_malformed:  # lower case: used as `with skipped_if_malformed(inputs, raw):`, as before
    """Reading one record: a MALFORMED error skips (and names) the record, not the call. A class, not a
    @contextmanager generator: entered for every record a reader reads (~1.5 against ~0.4 us)."""

    __slots__ = ("inputs", "raw")

    def __init__(self, inputs: EngineInputs, raw: Mapping[str, Any]) -> None:
        self.inputs, self.raw = inputs, raw

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> bool:
        if kind is None or not issubclass(kind, MALFORMED):
            return False
        self.inputs.reject(reference_of(self.raw), f"malformed FHIR ({kind.__name__} while reading it): skipped",
                           kind="malformed")
        return True


def guarded(inputs: EngineInputs, what: str, read: Callable[[], None]) -> None:
    """Last line of defence: a reader that trips on malformed content loses its own data, not the call."""
    try:
        read()
    except MALFORMED as error:
        inputs.problems.append(f"some {what} could not be read: malformed FHIR ({type(error).__name__}); skipped")


def validated(inputs: EngineInputs, model: type[BaseModel], raw: Mapping[str, Any], *, input: str = "",
              kind: str = "") -> bool:
    """Whether a selected record is valid FHIR R4 for `model` (fhir_valid); when it is not, it is named as
    rejected (a candidate of `input`, counted per `kind`)."""
    why = fhir_valid.problem(model, raw)
    if why:
        inputs.reject(reference_of(raw), why, input=input, kind=kind)
    return not why


def too_far_in_future(at: datetime | None, now: datetime) -> bool:
    return at is not None and at > now + FUTURE_TOLERANCE


def is_stale(at: datetime | None, now: datetime, fresh_hours: float) -> bool:
    """Older than its window, or with no time at all (a value with no time cannot be shown to be current)."""
    return at is None or now - at > hours(fresh_hours)


def medication_concept(raw: Mapping[str, Any], pool: ResourcePool) -> Any:
    """The drug a statement, order or administration names: its own concept, a contained Medication's code, or
    the code of the Medication it references."""
    if "medicationCodeableConcept" in raw:
        return raw["medicationCodeableConcept"]
    pointer = raw.get("medicationReference")
    reference = pointer.get("reference") if type(pointer) is dict else None
    if not isinstance(reference, str):
        return None
    if reference.startswith("#"):
        contained_resources = raw.get("contained")
        for contained in contained_resources if type(contained_resources) is list else ():
            if isinstance(contained, Mapping) and contained.get("id") == reference[1:]:
                return contained.get("code")
        return None
    medication = pool.by_reference.get(reference)
    return medication.get("code") if medication else None


def texts(resource: Mapping[str, Any], *keys: str) -> str:
    """The words of these members (strings, concept texts and displays), lower case, for a text match."""
    parts: list[str] = []
    for key in keys:
        value = resource.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, Mapping):
                parts.append(concept_text(item))
                parts.extend(str(c.get("display", "")) for c in codings(item))
                if isinstance(item.get("text"), str):
                    parts.append(item["text"])
    return " ".join(part for part in parts if part).lower()
