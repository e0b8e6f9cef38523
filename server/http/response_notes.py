"""A response-level note when no card is returned but something sent could not be read.

`{"cards": []}` says "nothing to report"; if a search was cut short or a prefetch key could not be read, that is not
known. CDS Hooks 2.0 §Extensions reserves `extension` (a JSON object, globally unique member names) on every
object, the response included: the note goes there, naming the keys and records, never a patient identifier.
"""
from __future__ import annotations

from cql_equivalents.fhir_select import ResourcePool

EXTENSION = "org.hemoptysis-cds.data-not-read"
NOTES_LIMIT = 20


def data_not_read(pool: ResourcePool) -> dict | None:
    notes = list(pool.problems) + [f"{reference}: {why}" for reference, why in pool.unreadable]
    if not notes:
        return None
    shown = notes[:NOTES_LIMIT]
    if len(notes) > NOTES_LIMIT:
        shown.append(f"and {len(notes) - NOTES_LIMIT} more")
    return {EXTENSION: {"summary": "No card, but not everything sent could be read: the record may hold more",
                        "notes": shown}}
