"""The cards about data the engine could not rely on: a bleeding record that was sent but could not be read, and
values too old to use as current.

Without the first, the only hemoptysis Condition failing validation would give `{"cards": []}`: the same answer as
a patient who never bled. A record the service cannot read does not exclude what it says.
"""
from __future__ import annotations

from datetime import timedelta
from functools import cache

from cql_equivalents.engine import Assessment
from cql_equivalents.model import EngineInputs
from cql_equivalents.tables import tables

from ..cards.builder import card, source
from ..cards.markdown import join, observed_text, records_not_used, when
from ..cards.prose import card_text
from ..cards.summary import fit

UNREADABLE_TOPIC = "hemoptysis-record-unreadable"
STALE_TOPIC = "hemoptysis-data-quality"


def bleeding_labels() -> dict[str, str]:
    """Condition concept key -> label, for the concepts whose role is bleeding (data/conditions.toml)."""
    table = tables()
    concepts = [*table.snomed_to_condition.values(), *table.icd10_to_condition.values(),
                *(found for _, found in table.icd10_prefix_to_condition), *(found for _, found in table.words_to_condition)]
    return {concept.key: concept.label for concept in concepts if concept.role == "bleeding"}


def unreadable_bleeding_card(inputs: EngineInputs, base: str) -> dict | None:
    labels = bleeding_labels()
    unread = [item for item in inputs.rejected if item.input in labels]
    if not unread:
        return None
    label = labels[unread[0].input]
    words = card_text()["unreadable"]
    detail = join(
        f"**{label.capitalize()} on record, not readable**: "
        + "; ".join(f"`{item.reference}`: {item.reason}" for item in unread[:words["listed"]]) + words["not_assessed"],
        words["check"],
        records_not_used(inputs),
    )
    return card(words["summary"], "warning", detail, source(base, UNREADABLE_TOPIC))


@cache
def _findings_window() -> timedelta:
    """card_text.toml [stale] findings_window_days as a timedelta, made once (~1.3 us each time, every answer)."""
    return timedelta(days=card_text()["stale"]["findings_window_days"])


def data_quality_card(assessment: Assessment, base: str) -> dict | None:
    inputs = assessment.inputs
    words = card_text()["stale"]
    # a study from years ago is history, not stale current data: only the recent ones are listed here
    stale_findings = [f for f in inputs.findings if f.stale and f.at and inputs.now - f.at <= _findings_window()]
    if not inputs.stale and not stale_findings:
        return None
    names = ", ".join(dict.fromkeys([o.label for o in inputs.stale.values()] + [f.label for f in stale_findings]))
    summary = fit(words["summary"], names=names)
    specs = tables().observation_inputs
    lines = [f"- {o.label} {observed_text(o)} at {when(o.at)} (`{o.reference}`): older than "
             f"{specs[o.input].fresh_hours:g} h" for o in inputs.stale.values()]
    lines += [f"- {f.label} at {when(f.at)} (`{f.reference}`): older than its window" for f in stale_findings]
    detail = join(
        words["intro"],
        "\n".join(lines),
        records_not_used(inputs),
    )
    return card(summary, "info", detail, source(base, STALE_TOPIC))
