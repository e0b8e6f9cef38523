"""Selection over raw FHIR JSON, before any model is built.

Building a fhir.resources model costs ~0.1 ms per resource, so the engine first picks, from plain dicts, the
few resources it will read (by resource type, code and status) and validates only those.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .code_memo import MISSING, CodeMemo, concept_signature, members_digest, memo_for
from .patient_binding import foreign_reason, referenced_patient
from .quick_frozen import quick_frozen

Classification = TypeVar("Classification")
# Set by the request parser in place of a record that cannot be read as sent (repeated JSON member names); its
# value says why. Not a FHIR element name (those are [A-Za-z0-9_]), so no real record carries it.
UNREADABLE = "@unreadable"


@quick_frozen
@dataclass(frozen=True)
class CodeIndex:
    """The resources of one type, in order, each with the number of its distinct `code` (-1: malformed); per
    distinct code its signature and the positions of its resources; the positions of the malformed ones."""

    resources: list[dict]
    code_ids: list[int]
    signatures: list[bytes] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)
    loose: list[int] = field(default_factory=list)
    _carrying: dict[tuple[str, ...], list[int]] = field(default_factory=dict, repr=False, compare=False)

    def carrying(self, keys: tuple[str, ...]) -> list[int]:
        """Positions of the resources that carry any of `keys` (one C-level set test per resource, once)."""
        found = self._carrying.get(keys)
        if found is None:
            wanted = frozenset(keys)
            found = self._carrying[keys] = [position for position, resource in enumerate(self.resources)
                                            if not wanted.isdisjoint(resource)]
        return found


@dataclass
class ResourcePool:
    """All resources of one hook call, indexed by type, with the problems met while reading them."""

    by_type: dict[str, list[dict]] = field(default_factory=dict)
    by_reference: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # the call's context.patientId: resources about anyone else are not added (patient_binding.py)
    patient_id: str | None = None
    foreign_patients: list[str] = field(default_factory=list)  # Patient/<id> of Patient resources with another id
    # prefetch keys that could not be read at all, searches cut short by paging, and records marked unreadable
    # at parse time (reference, why): each is also named in `problems` or reported as a rejected record
    unusable_keys: dict[str, str] = field(default_factory=dict)
    truncated: dict[str, str] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    _code_indexes: dict[str, CodeIndex] = field(default_factory=dict, repr=False)
    _own_subjects: set[str] = field(default_factory=set, repr=False)  # subject references naming patient_id

    def unusable(self, key: str, why: str) -> None:
        self.unusable_keys[key] = why
        self.problems.append(f"prefetch '{key}' {why}: not read (so its data are unknown, not absent)")

    def of(self, resource_type: str) -> list[dict]:
        return self.by_type.get(resource_type, [])

    def code_index(self, resource_type: str) -> CodeIndex:
        """Built once per call: a chart of 5,000 Observations has a few dozen distinct codes."""
        index = self._code_indexes.get(resource_type)
        if index is None:
            resources = self.of(resource_type)
            numbers: dict[bytes, int] = {}
            code_ids: list[int] = []
            groups: list[list[int]] = []
            loose: list[int] = []
            for position, resource in enumerate(resources):
                key = concept_signature(resource.get("code"))
                if key is None:
                    code_ids.append(-1)
                    loose.append(position)
                    continue
                number = numbers.get(key)
                if number is None:
                    number = numbers[key] = len(groups)
                    groups.append([])
                code_ids.append(number)
                groups[number].append(position)
            index = self._code_indexes[resource_type] = CodeIndex(resources, code_ids, list(numbers), groups, loose)
        return index

    def matching(self, resource_type: str, classify: Callable[[dict], Classification],
                 also_reads: tuple[str, ...] = (), memo: CodeMemo | None = None) -> Iterator[tuple[dict, Classification]]:
        """The resources of this type whose `classify(resource)` is truthy, with it, in chart order.

        `classify` runs once per distinct code (`concept_signature`) and must read nothing of a resource but its
        `code` and the keys named in `also_reads`; a resource carrying any of those keys, or a malformed code, is
        classified on its own. The resources of a code whose answer is falsy are never visited (most of a chart:
        codes the engine does not read), and with `memo` the answer per distinct code (for a resource carrying
        `also_reads` keys: per distinct code and values of those keys) is kept for the process (code_memo.py):
        `classify` must then depend on nothing but those members and the tables.
        """
        if not self.by_type.get(resource_type):
            return  # no resource of this type (most of the types asked for): no index built, no memo looked up
        resources = (index := self.code_index(resource_type)).resources
        alone = index.carrying(also_reads) if also_reads else ()
        alone_set = frozenset(alone)
        answers = memo.answers() if memo is not None else None
        by_code: list = [None] * len(index.groups)
        positions: list[int] = []
        # every code's remembered answer in one pass (MISSING, an object, is truthy): the codes answered falsy, most
        # of a chart, are passed over without a look at their resources
        known = [answers.get(signature, MISSING) for signature in index.signatures] if answers is not None \
            else [MISSING] * len(index.groups)
        for number, result in enumerate(known):
            if not result:
                continue
            group = index.groups[number]
            members = [position for position in group if position not in alone_set] if alone_set else group
            if not members:
                continue
            if result is MISSING:
                result = classify(resources[members[0]])
                if answers is not None:
                    answers[index.signatures[number]] = result
                if not result:
                    continue
            by_code[number] = result
            positions.extend(members)
        single: dict[int, Classification] = {}
        # one with no code carrying an `also_reads` key (a MedicationRequest) is read once, below (it was read twice)
        for position in [position for position in index.loose if position not in alone_set] if alone_set else index.loose:
            result = classify(resources[position])
            if result:
                single[position] = result
                positions.append(position)
        for position in alone:
            resource = resources[position]
            # what classify reads of it (its code and `also_reads`) decides the answer: remembered by a keyed
            # digest of those members, so no text of the record is kept (a drug order carries its drug's name)
            key = members_digest(resource, also_reads) if answers is not None else None
            answer: Any = MISSING if key is None or answers is None else answers.get(key, MISSING)
            if answer is MISSING:
                answer = classify(resource)
                if key is not None and answers is not None:
                    answers[key] = answer
            if answer:
                single[position] = answer
                positions.append(position)
        if len(positions) > 1:
            positions.sort()
        code_ids = index.code_ids
        for position in positions:
            found = single.get(position) if single else None
            yield resources[position], found if found is not None else by_code[code_ids[position]]

    def add(self, resource: dict) -> None:
        resource_type = resource.get("resourceType")
        if type(resource_type) is not str:
            self.problems.append("an entry without resourceType was skipped")
            return
        resource_id = resource.get("id")
        if self.patient_id is not None:
            # A subject already shown to name this patient needs no second look (a chart repeats one subject
            # thousands of times); anything else is judged in full by patient_binding.
            subject = resource.get("subject")
            named = subject.get("reference") if type(subject) is dict else None
            if type(named) is not str or named not in self._own_subjects or resource_type == "Patient":
                reason = foreign_reason(resource, self.patient_id)
                if reason is not None:
                    reference = f"{resource_type}/{resource_id if type(resource_id) is str else '(no id)'}"
                    if resource_type == "Patient":
                        self.foreign_patients.append(reference)
                    self.problems.append(f"`{reference}`: {reason}; not used for this patient")
                    return
                if type(named) is str and resource_type != "Patient" and referenced_patient(named) == self.patient_id:
                    self._own_subjects.add(named)
        if type(resource_id) is str:
            key = f"{resource_type}/{resource_id}"
            if key in self.by_reference:
                return  # the same resource reached us through two prefetch keys
            self.by_reference[key] = resource
        found = self.by_type.get(resource_type)
        if found is None:
            self.by_type[resource_type] = [resource]
        else:
            found.append(resource)

    def coded(self, resource_type: str, system: str, wanted: frozenset[str]) -> Iterator[tuple[dict, list[str]]]:
        """Each resource of this type whose `code` has a coding in `system` with a wanted code, with those codes.

        The selection that keeps a 5,000-resource chart cheap: plain dict reads, no model, one look per
        distinct code, and most resources (codes the engine never reads) are passed over.
        """
        def wanted_codes(resource: dict) -> list[str]:
            concept = resource.get("code")
            coding = concept.get("coding") if type(concept) is dict else None
            if type(coding) is not list:
                return []
            return [item["code"] for item in coding
                    if type(item) is dict and item.get("system") == system and type(item.get("code")) is str
                    and item["code"] in wanted]

        return self.matching(resource_type, wanted_codes, memo=memo_for(("coded", resource_type, system, wanted)))

    def count(self) -> dict[str, int]:
        return {resource_type: len(items) for resource_type, items in sorted(self.by_type.items())}


def _outcome_text(outcome: Mapping[str, Any]) -> str:
    texts = []
    for issue in outcome.get("issue") or ():
        if isinstance(issue, Mapping):
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
            if text:
                texts.append(str(text))
    return "; ".join(texts) or "no diagnostics given"


def pool_from_values(values: Mapping[str, Any], patient_id: str | None = None) -> ResourcePool:
    """Walk prefetch values (resources, searchset Bundles, null) into one pool.

    An OperationOutcome in place of data (bare, or as a Bundle entry with search.mode = outcome) is the
    client telling us the query failed (CDS Hooks 2.0 §Prefetch Template): it is recorded as a problem.
    Nothing sent is dropped without a word: a key of the wrong shape (`entry` an object), entries that are not
    resources, a search cut short by paging and a record the parser marked UNREADABLE are all named.
    Values come from a JSON parser, so `type(x) is dict` stands for "JSON object" (and is several times
    cheaper than an isinstance check against Mapping on every entry of a large Bundle).
    With `patient_id` (the call's context.patientId), resources about another patient are left out and named.
    """
    pool = ResourcePool(patient_id=patient_id)
    add = pool.add
    for key, value in values.items():
        if value is None:
            continue  # the client ran the query and found nothing
        if type(value) is not dict:
            pool.unusable(key, f"is a JSON {_json_kind(value)}, not a FHIR resource")
            continue
        if UNREADABLE in value:
            pool.unusable(key, str(value[UNREADABLE]))
            continue
        if value.get("resourceType") != "Bundle":
            if value.get("resourceType") == "OperationOutcome":
                pool.problems.append(f"prefetch '{key}' failed at the client: {_outcome_text(value)}")
            elif type(value.get("resourceType")) is not str:
                pool.unusable(key, "has no resourceType")
            else:
                add(value)
            continue
        _tagged_truncated(pool, key, value)
        entries = value.get("entry")
        if entries is None:
            continue
        if type(entries) is not list:
            pool.unusable(key, f"has an `entry` that is a JSON {_json_kind(entries)}, not a list: nothing in it was read")
            continue
        skipped = 0
        for entry in entries:
            resource = entry.get("resource") if type(entry) is dict else None
            if type(resource) is not dict or type(resource.get("resourceType")) is not str:
                skipped += 1
                continue
            if UNREADABLE in resource:
                pool.unreadable.append((f"{resource['resourceType']}/{resource.get('id', '(no id)')}",
                                        str(resource[UNREADABLE])))
            elif resource.get("resourceType") == "OperationOutcome" and _in_outcome_mode(entry):
                pool.problems.append(f"prefetch '{key}' failed at the client: {_outcome_text(resource)}")
            else:
                add(resource)
        if skipped:
            pool.problems.append(f"prefetch '{key}': {skipped} {'entry' if skipped == 1 else 'entries'} without a "
                                 "FHIR resource (no resource object or no resourceType) skipped")
    return pool


TRUNCATED_TAG = ("urn:hemoptysis-cds", "truncated")  # set by server.fhir_client when paging stops early


def _tagged_truncated(pool: ResourcePool, key: str, bundle: dict) -> None:
    meta = bundle.get("meta")
    tags = meta.get("tag") if type(meta) is dict else None
    for tag in tags if type(tags) is list else ():
        if type(tag) is dict and (tag.get("system"), tag.get("code")) == TRUNCATED_TAG:
            display = tag.get("display") if type(tag.get("display")) is str else "not every page was read"
            pool.truncated[key] = display
            pool.problems.append(f"search '{key}' was cut short ({display}): a record on a later page (a drug, a "
                                 "newer value) may be missing from these cards")
            return


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "object"
                                                                                                if type(value) is dict else type(value).__name__)


def _in_outcome_mode(entry: dict) -> bool:
    search = entry.get("search")
    return type(search) is dict and search.get("mode") == "outcome"
