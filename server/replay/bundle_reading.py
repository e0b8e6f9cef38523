"""Reading FHIR data files for request-from-bundle: a Bundle of any type (nested Bundles opened), a single resource,
or NDJSON lines, with `urn:uuid:` references rewritten to the `Type/id` a FHIR server would give (Synthea's
transaction bundles refer to each other by fullUrl; a server rewrites those when it stores them, and so does this)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class BundleError(Exception):
    """The input cannot become a request; the message says why."""


@dataclass
class ReadResult:
    resources: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what could not be read, and why


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
