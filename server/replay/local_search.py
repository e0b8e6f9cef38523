"""A local FHIR search over one patient's resources, as a FHIR server's first page would answer it: the few search
parameters the services' prefetch templates use (patient / subject, code, category, status, _sort by a date,
_count, _include=Type:element). Any other parameter raises UnsupportedSearch, so the key is left out and the service
fetches it or answers 412, exactly as with an EHR that could not prefetch it."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from cql_equivalents.fhir_values import codings, effective_time, parse_instant
from server.fhir.prefetch import render
from server.replay.patients import patient_id_of_reference, patient_of

# Where each search parameter looks, per resource type (FHIR R4 SearchParameter expressions, the subset used here).
_CODE_PATHS = {
    "Observation": ("code",), "Condition": ("code",), "Procedure": ("code",), "AllergyIntolerance": ("code",),
    "MedicationRequest": ("medicationCodeableConcept",), "MedicationStatement": ("medicationCodeableConcept",),
    "MedicationAdministration": ("medicationCodeableConcept",), "MedicationDispense": ("medicationCodeableConcept",),
    "Medication": ("code",), "DiagnosticReport": ("code",), "ServiceRequest": ("code",),
}
# _sort parameters that order by a resource's clinical time (FHIR R4 search parameters of type date). All are
# evaluated with one notion of "when": effective[x] / issued / asserted / authored / recorded / onset, then
# performed[x], then meta.lastUpdated; close enough for a first page of the newest records.
_DATE_SORTS = frozenset({"date", "effective-time", "authored", "authoredon", "issued", "recorded-date", "onset-date",
                         "_lastUpdated"})



class UnsupportedSearch(Exception):
    pass


def _token_matches(concept: Any, wanted: list[str]) -> bool:
    for coding in codings(concept):
        for token in wanted:
            system, _, code = token.rpartition("|") if "|" in token else ("", "", token)
            if "|" in token and system and coding.get("system") != system:
                continue
            if code == "" or coding.get("code") == code:
                return True
    return False


def _concepts(resource: Mapping[str, Any], paths: tuple[str, ...]) -> Iterator[Any]:
    for path in paths:
        value = resource.get(path)
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                yield item


def search(resources: list[dict], query: str, patient_id: str) -> tuple[list[dict], list[dict]]:
    """Evaluate `Type?param=value&...` over one patient's resources, as a FHIR server's first page would:
    the matches, and the resources an `_include=Type:element` brings along."""
    resource_type, _, parameters = query.partition("?")
    found = [r for r in resources if r.get("resourceType") == resource_type]
    count: int | None = None
    newest_first = False
    include_elements: list[str] = []
    for name, value in parse_qsl(parameters, keep_blank_values=True):
        if name in ("patient", "subject"):
            wanted = patient_id_of_reference(value) or value
            found = [r for r in found if patient_of(r) == wanted]
        elif name == "code":
            paths = _CODE_PATHS.get(resource_type)
            if paths is None:
                raise UnsupportedSearch(f"code on {resource_type}")
            found = [r for r in found if any(_token_matches(c, value.split(",")) for c in _concepts(r, paths))]
        elif name == "category":
            found = [r for r in found if any(_token_matches(c, value.split(",")) for c in _concepts(r, ("category",)))]
        elif name == "status":
            found = [r for r in found if r.get("status") in value.split(",")]
        elif name == "_count":
            count = int(value)
        elif name == "_sort" and value.removeprefix("-") in _DATE_SORTS:
            newest_first = value.startswith("-")
        elif name == "_include" and value.startswith(f"{resource_type}:") and value.count(":") == 1:
            include_elements.append(value.split(":")[1])  # e.g. MedicationRequest:medication
        else:
            raise UnsupportedSearch(f"{name}={value}")
    if newest_first:
        oldest = datetime.min.replace(tzinfo=timezone.utc)
        found.sort(key=lambda r: moment_of(r) or oldest, reverse=True)
    found = found[:count] if count is not None else found
    return found, _included(found, include_elements, resources)


def _included(found: list[dict], elements: list[str], resources: list[dict]) -> list[dict]:
    """The resources that the matches' references name through the given elements (element or elementReference)."""
    by_reference = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources if isinstance(r.get("id"), str)}
    included: dict[str, dict] = {}
    for resource in found:
        for element in elements:
            for member in (element, f"{element}Reference"):
                target = resource.get(member)
                reference = target.get("reference") if isinstance(target, Mapping) else None
                if isinstance(reference, str) and reference in by_reference:
                    included.setdefault(reference, by_reference[reference])
    return list(included.values())


def moment_of(resource: Mapping[str, Any]) -> datetime | None:
    """When a record was true, for sorting: effective_time, else authored / performed[x] / meta.lastUpdated."""
    performed = resource.get("performedPeriod") if isinstance(resource.get("performedPeriod"), Mapping) else {}
    meta = resource.get("meta") if isinstance(resource.get("meta"), Mapping) else {}
    return (effective_time(resource) or parse_instant(resource.get("authored"))
            or parse_instant(resource.get("performedDateTime")) or parse_instant(performed.get("end"))
            or parse_instant(performed.get("start")) or parse_instant(meta.get("lastUpdated")))


def searchset(matches: list[dict], included: list[dict] = ()) -> dict:
    """A searchset Bundle; `total` counts the matches only, as FHIR says."""
    return {"resourceType": "Bundle", "type": "searchset", "total": len(matches),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in matches]
            + [{"resource": r, "search": {"mode": "include"}} for r in included]}


def prefetch_for(templates: Mapping[str, str], context: dict, resources: list[dict]) -> tuple[dict, list[str]]:
    """One value per template the builder can evaluate; the keys it cannot are named, and left out."""
    values: dict[str, Any] = {}
    left_out = []
    for key, template in templates.items():
        relative = render(template, context)
        if relative is None:
            left_out.append(f"{key}: the context has no value for its tokens")
            continue
        if "?" not in relative:  # a read: Type/id
            resource_type, _, resource_id = relative.partition("/")
            values[key] = next((r for r in resources if r.get("resourceType") == resource_type
                                and r.get("id") == resource_id), None)
            continue
        try:
            values[key] = searchset(*search(resources, relative, context["patientId"]))
        except (UnsupportedSearch, ValueError) as error:
            left_out.append(f"{key}: search parameter {error} is not evaluated locally")
    return values, left_out
