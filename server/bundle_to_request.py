"""`hemoptysis-cds request-from-bundle`: a CDS Hooks request, with prefetch, from a FHIR patient bundle.

Any FHIR data set becomes replayable: the resources of one patient (a Bundle of any type, a single resource, or
NDJSON lines) are put where a FHIR server would return them for each prefetch template the services declare in
discovery. The templates are evaluated locally with the few search parameters they use (patient / subject, code,
category, status, _sort by a date, _count, _include=Type:element); any other parameter leaves the key out, so the
service fetches it or answers 412, exactly as with an EHR that could not prefetch it.

Transaction bundles refer to each other by `urn:uuid:` fullUrls (Synthea does); a FHIR server rewrites those to
`Type/id` when it stores them, and so does this builder, so references resolve as they would on a server.
"""
from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from cql_equivalents.fhir_values import codings, effective_time, parse_instant
from hooks.service import CdsService

from .prefetch import render
from .progress import note, progress
from .timeshift import format_instant, parse_reference_instant

SUPPORTED_HOOKS = ("patient-view",)
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id datatype
DEFAULT_USER = "Practitioner/request-from-bundle"
# Where each search parameter looks, per resource type (FHIR R4 SearchParameter expressions, the subset used here).
_CODE_PATHS = {
    "Observation": ("code",), "Condition": ("code",), "Procedure": ("code",), "AllergyIntolerance": ("code",),
    "MedicationRequest": ("medicationCodeableConcept",), "MedicationStatement": ("medicationCodeableConcept",),
    "MedicationAdministration": ("medicationCodeableConcept",), "MedicationDispense": ("medicationCodeableConcept",),
    "Medication": ("code",), "DiagnosticReport": ("code",), "ServiceRequest": ("code",),
}
_PATIENT_MEMBERS = ("subject", "patient", "beneficiary")
# _sort parameters that order by a resource's clinical time (FHIR R4 search parameters of type date). All are
# evaluated with one notion of "when": effective[x] / issued / asserted / authored / recorded / onset, then
# performed[x], then meta.lastUpdated; close enough for a first page of the newest records.
_DATE_SORTS = frozenset({"date", "effective-time", "authored", "authoredon", "issued", "recorded-date", "onset-date",
                         "_lastUpdated"})


class BundleError(Exception):
    """The input cannot become a request; the message says why."""


@dataclass
class ReadResult:
    resources: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what could not be read, and why


class _UnsupportedSearch(Exception):
    pass


# ------------------------------------------------------------------------------------------ reading

def resources_in(document: Any) -> Iterator[tuple[dict, str | None]]:
    """Each resource of a parsed document with its Bundle fullUrl: a Bundle's entries (nested Bundles opened),
    or the document itself when it is a single resource."""
    if not isinstance(document, Mapping) or not isinstance(document.get("resourceType"), str):
        return
    if document["resourceType"] != "Bundle":
        yield dict(document), None
        return
    for entry in document.get("entry") or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping):
            resource = entry["resource"]
            if resource.get("resourceType") == "Bundle":
                yield from resources_in(resource)
            elif isinstance(resource.get("resourceType"), str):
                yield dict(resource), entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None


def read_text(text: str, name: str, into: ReadResult) -> None:
    """Parse one file's text (JSON, or NDJSON when the name ends in .ndjson) into resources."""
    if name.endswith(".ndjson"):
        documents = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    documents.append(json.loads(line))
                except json.JSONDecodeError as error:
                    into.skipped.append(f"{name} line {number}: not JSON ({error.msg})")
    else:
        try:
            documents = [json.loads(text)]
        except json.JSONDecodeError as error:
            raise BundleError(f"{name} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") \
                from None
    pairs = [pair for document in documents for pair in resources_in(document)]
    if not pairs and documents:
        into.skipped.append(f"{name}: no FHIR resource in it")
    into.resources += with_server_references(pairs)


def read_paths(paths: Iterable[Path]) -> ReadResult:
    """Read bundles, resources or NDJSON files; a directory stands for the .json / .ndjson files in it."""
    result = ReadResult()
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".json", ".ndjson"))
        elif path.exists():
            files.append(path)
        else:
            raise BundleError(f"{path}: no such file")
    for file in files:
        try:
            text = file.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark is tolerated
        except UnicodeDecodeError:
            raise BundleError(f"{file} is not UTF-8 text") from None
        read_text(text, str(file), result)
    return result


def with_server_references(pairs: list[tuple[dict, str | None]]) -> list[dict]:
    """Rewrite `urn:uuid:` references to the `Type/id` a FHIR server would give the resource they name."""
    local = {}
    for resource, full_url in pairs:
        if full_url and full_url.startswith("urn:") and isinstance(resource.get("id"), str):
            local[full_url] = f"{resource['resourceType']}/{resource['id']}"
        elif full_url and full_url.startswith("urn:uuid:") and "id" not in resource:
            resource["id"] = full_url.removeprefix("urn:uuid:")  # the id a server would assign, kept stable
            local[full_url] = f"{resource['resourceType']}/{resource['id']}"
    if not local:
        return [resource for resource, _ in pairs]

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (local.get(v, v) if k == "reference" and isinstance(v, str) else rewrite(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(item) for item in value]
        return value

    return [rewrite(resource) for resource, _ in pairs]


# ------------------------------------------------------------------------------------------ patients

def patient_id_of_reference(reference: Any) -> str | None:
    """Patient/123, http://server/fhir/Patient/123/_history/2 -> 123."""
    if not isinstance(reference, str) or "Patient/" not in reference:
        return None
    tail = reference.rsplit("Patient/", 1)[1]
    return tail.split("/")[0] or None


def patient_of(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return resource.get("id") if isinstance(resource.get("id"), str) else None
    for member in _PATIENT_MEMBERS:
        target = resource.get(member)
        if isinstance(target, Mapping):
            found = patient_id_of_reference(target.get("reference"))
            if found:
                return found
    return None


def by_patient(resources: Iterable[dict]) -> dict[str, list[dict]]:
    """Resources grouped by the patient they are about (the Patient itself included). Medication resources, which
    are about no patient, go with every patient, so a template that asks for them (by _include or by type) finds
    them; other patient-less resources (Organization, Practitioner, ...) are left out."""
    groups: dict[str, list[dict]] = {}
    shared = []
    for resource in resources:
        patient = patient_of(resource)
        if patient is None:
            shared.append(resource)
        else:
            groups.setdefault(patient, []).append(resource)
    return {patient: items + [r for r in shared if r.get("resourceType") == "Medication"]
            for patient, items in groups.items()}


# ------------------------------------------------------------------------------------------ local search

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
                raise _UnsupportedSearch(f"code on {resource_type}")
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
            raise _UnsupportedSearch(f"{name}={value}")
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
        except (_UnsupportedSearch, ValueError) as error:
            left_out.append(f"{key}: search parameter {error} is not evaluated locally")
    return values, left_out


# ------------------------------------------------------------------------------------------ requests

def templates_for(hook: str, services: Iterable[CdsService], service_id: str | None = None) -> dict[str, str]:
    chosen = [s for s in services if s.hook == hook and (service_id is None or s.id == service_id)]
    if not chosen:
        raise BundleError(f"no service answers hook '{hook}'" + (f" with id '{service_id}'" if service_id else ""))
    templates: dict[str, str] = {}
    for service in chosen:
        for key, template in service.prefetch.items():
            if templates.get(key, template) != template:
                raise BundleError(f"services on '{hook}' define prefetch '{key}' differently; pick one with --service")
            templates[key] = template
    return templates


def reference_instant(choice: str, resources: list[dict], now: datetime) -> str | None:
    """now: dates move with the time elapsed since the build; latest: the newest record becomes 'now' on
    replay; none: dates are sent as they are; or an explicit ISO dateTime."""
    if choice == "none":
        return None
    if choice == "now":
        return format_instant(now)
    if choice == "latest":
        # future dates included: a de-identified data set (the MIMIC-IV demo lies in the 2110s) is all "future",
        # and its newest record is exactly the "now" replay must shift it to
        moments = [m for m in (moment_of(r) for r in resources) if m is not None]
        return format_instant(max(moments)) if moments else None
    try:
        return format_instant(parse_reference_instant(choice))
    except ValueError as error:
        raise BundleError(f"--reference-instant: {error} (or use now, latest, none)") from None


def build_request(resources: list[dict], patient_id: str, *, hook: str, services: Iterable[CdsService],
                  service_id: str | None = None, user_id: str = DEFAULT_USER, encounter_id: str | None = None,
                  instant: str | None = None, title: str = "") -> tuple[dict, list[str]]:
    """A hook request for one patient, with a `_fixture` member (title, reference instant) replay understands.
    Returns the request and the prefetch keys that were left out, with why."""
    if hook not in SUPPORTED_HOOKS:
        raise BundleError(f"hook '{hook}' is not supported; supported: {', '.join(SUPPORTED_HOOKS)}")
    if not _FHIR_ID.match(patient_id):
        raise BundleError(f"patient id '{patient_id[:80]}' is not a FHIR id ([A-Za-z0-9-.], 1-64 characters); "
                          "a service would refuse it as context.patientId")
    context = {"userId": user_id, "patientId": patient_id}
    if encounter_id:
        context["encounterId"] = encounter_id
    values, left_out = prefetch_for(templates_for(hook, services, service_id), context, resources)
    request: dict[str, Any] = {}
    fixture = {"title": title or f"patient {patient_id}", "builtBy": "hemoptysis-cds request-from-bundle"}
    if instant:
        fixture["referenceInstant"] = instant
    request["_fixture"] = fixture
    request.update({"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": values})
    return request, left_out


def command(bundles: list[str], *, hook: str, patient: str | None, service: str | None, user: str, reference: str,
            out: str | None) -> int:
    """`hemoptysis-cds request-from-bundle`: exit 0 with the request(s) written, 2 with the reason otherwise."""
    from hooks import SERVICES

    try:
        read = read_paths([Path(b) for b in bundles])
        groups = by_patient(read.resources)
        if not groups:
            raise BundleError("no resource in the input is about a patient")
        if patient is not None:
            if patient not in groups:
                raise BundleError(f"patient '{patient}' is not in the input; it holds {_listed(groups)}")
            groups = {patient: groups[patient]}
        one_file_each = out is not None and (Path(out).is_dir() or out.endswith("/"))
        if len(groups) > 1 and not one_file_each:
            raise BundleError(f"{len(groups)} patients in the input ({_listed(groups)}): pick one with --patient, "
                              "or give --out DIRECTORY/ for one request each")
        now = datetime.now(timezone.utc)
        for skipped in read.skipped:
            note(f"note: {skipped}")
        for patient_id, resources in progress(sorted(groups.items()), total=len(groups), unit="patient",
                                              desc="request-from-bundle"):
            instant = reference_instant(reference, resources, now)
            if instant is None and reference == "latest":
                note(f"note: patient {patient_id}: no record carries a date, so no reference instant is written "
                     "(replay sends its dates as they are)")
            request, left_out = build_request(
                resources, patient_id, hook=hook, services=SERVICES.values(), service_id=service, user_id=user,
                instant=instant, title=f"{', '.join(Path(b).name for b in bundles)}: patient {patient_id}")
            for left in left_out:
                note(f"note: prefetch {left}")
            text = json.dumps(request, indent=2, ensure_ascii=False) + "\n"
            if out is None:
                sys.stdout.write(text)
                continue
            target = Path(out) / f"{Path(bundles[0]).stem}.{patient_id}.json" if one_file_each else Path(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            note(f"wrote {target}")
    except BundleError as error:
        print(f"request-from-bundle: {error}", file=sys.stderr)
        return 2
    return 0


def _listed(groups: Mapping[str, Any]) -> str:
    return ", ".join(sorted(groups)[:10]) + (" ..." if len(groups) > 10 else "")
