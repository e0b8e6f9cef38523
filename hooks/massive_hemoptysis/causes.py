"""The sibling-engine card: each underlying cause on record (a coded condition, a cause seen only on imaging,
or a special population whose definitive control is BAE) with the engine that manages it once the airway is
secured, and the population's own path. One card for the decision "who treats the cause"."""
from __future__ import annotations

from dataclasses import dataclass, field

from cql_equivalents.results import Assessment
from cql_equivalents.imaging_causes import imaging_causes
from cql_equivalents.tables import tables

from ..cards.builder import card, source
from ..cards.links import dossier_link, engine_link
from ..cards.markdown import join, numbered, sources, when
from ..cards.prose import card_text
from ..cards.summary import fit
from ..service import Evaluation

TOPIC = "sibling-engines"


@dataclass
class _Cause:
    engine_id: str
    labels: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)


def _causes(assessment: Assessment) -> list[_Cause]:
    by_engine: dict[str, _Cause] = {}

    def add(engine_id: str, label: str, record: str) -> None:
        cause = by_engine.setdefault(engine_id or f"none:{label}", _Cause(engine_id))
        if label not in cause.labels:
            cause.labels.append(label)
        if record not in cause.records:
            cause.records.append(record)

    for group in assessment.causes:
        for fact in group.facts:
            add(group.engine_id, fact.concept.label, f"`{fact.reference}`")
    for found in imaging_causes(assessment.inputs):
        for engine_id in found.engines:
            add(engine_id, f"{found.label} ({found.study})", f"`{found.reference}`, {when(found.at)}")
    return sorted(by_engine.values(), key=lambda cause: (cause.engine_id == "", cause.engine_id))


def causes_card(assessment: Assessment, evaluation: Evaluation) -> dict | None:
    causes = _causes(assessment)
    paths = [match for match in assessment.populations if match.bae == "target" and match.sibling]
    if not causes and not paths:
        return None
    words = card_text()["causes"]
    engines = tables().sibling_engines
    for match in paths:  # a population opened by results (e.g. positive Xpert) names its engine too
        if not any(cause.engine_id == match.sibling for cause in causes):
            causes.append(_Cause(match.sibling, [match.label], []))
    labels = list(dict.fromkeys(label.split(" (")[0] for cause in causes for label in cause.labels))
    lines, links = [], []
    for cause in causes:
        records = f" ({', '.join(cause.records)})" if cause.records else ""
        engine = engines.get(cause.engine_id)
        if engine:
            lines.append(f"- **{', '.join(cause.labels)}**{records} -> {engine['title']}: {engine['handoff']}")
            links.append(engine_link(evaluation.links, cause.engine_id, engine["title"]))
        else:
            lines.append(f"- **{', '.join(cause.labels)}**{records}: {words['no_engine']}")
    path_text = "\n\n".join(f"**{match.label}** (" + "; ".join(match.evidence) + ")\n\n"
                            + numbered(match.steps) for match in paths)
    links.append(dossier_link(evaluation.links))
    detail = join(
        f"**Do now**\n\n{words['do_now']}",
        "**Why**\n\n" + "\n".join(lines),
        path_text,
        sources(words["source"], *(match.source for match in paths)),
    )
    variants = words["summary"] if any(cause.engine_id for cause in causes) else words["summary_no_engine"]
    return card(fit(variants, labels=", ".join(labels)), "info", detail, source(evaluation.links.public_base_url, TOPIC),
                links=links)
