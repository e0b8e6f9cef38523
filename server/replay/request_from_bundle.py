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
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from server.replay.bundle_reading import BundleError, read_paths
from server.replay.patients import by_patient
from server.replay.progress import note, progress
from server.replay.request_builder import build_request, reference_instant


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
