"""Cards of the engine beyond escalation and reversal: one per special population, stale data, and the engine
report (entry points, phases, calculators). Clinical content comes from cql_equivalents/ and its tables."""
from __future__ import annotations

from datetime import timedelta

from cql_equivalents.results import Assessment, PopulationMatch
from cql_equivalents.tables import tables

from . import card_kit as kit
from .topics import population_topic


def rules_text(assessment: Assessment, kinds: tuple[str, ...] = ("contraindicated", "not-indicated", "caution", "sequence"),
               only: tuple[str, ...] = ()) -> str:
    """The contraindication / caution rules that apply, as a card section (all of them, or only the keys given)."""
    rules = [r for r in assessment.rules if r.kind in kinds and (not only or r.key in only)]
    if not rules:
        return ""
    return "**Contraindications and cautions on record**\n\n" + "\n".join(
        f"- **{r.kind}: {r.intervention}**: {r.text} Because: {', '.join(r.because)}. _({r.source})_" for r in rules)


# ------------------------------------------------------------------------------------------ special populations

def card_populations(assessment: Assessment) -> list:
    """Populations that are a decision of their own. The others are carried by the cards that act on them: a
    changed target by the bleeding card's definitive-control step, a BAE-target path by the sibling-engine card,
    an antithrombotic by the reversal cards. What is left: a coagulopathy with no agent to explain it."""
    return [match for match in assessment.populations
            if match.key == "anticoagulated_coagulopathic" and not assessment.reversal]


def population_card(match: PopulationMatch, assessment: Assessment, base: str) -> dict:
    bae = {"target": "bronchial artery embolisation is the definitive control",
           "not-target": "NOT a bronchial artery embolisation target",
           "pa-targeted": "pulmonary-artery source: PA-targeted embolisation, not bronchial BAE"}[match.bae]
    summary = match.summary
    sibling = ""
    if match.sibling:
        sibling = f"Hand over for definitive management to `{match.sibling}` once the airway is secured (seed 004 phase 12)."
    only = tuple(r.key for r in assessment.rules if match.label in r.because)
    detail = kit.join(
        f"**{match.label}**: {bae}.",
        "**Why this path**: " + "; ".join(match.evidence) + ".",
        "**Path** (seed 004 special population)\n\n" + "\n".join(f"{i}. {step}" for i, step in enumerate(match.steps, 1)),
        sibling,
        rules_text(assessment, only=only) if only else "",
        f"_Source: {match.source}_",
    )
    topic = population_topic(match.key)
    # one critical card for the bleeding: a population's own card is a further decision, never a second alarm
    return kit.card(summary, "warning", detail, kit.source(base, topic))


# ------------------------------------------------------------------------------------------ data quality, report

def data_quality_card(assessment: Assessment, base: str) -> dict | None:
    inputs = assessment.inputs
    # a study from years ago is history, not stale current data: only the last 90 days are listed here
    recent = timedelta(days=90)
    stale_findings = [f for f in inputs.findings if f.stale and f.at and inputs.now - f.at <= recent]
    if not inputs.stale and not stale_findings:
        return None
    names = ", ".join(dict.fromkeys([o.label for o in inputs.stale.values()] + [f.label for f in stale_findings]))
    summary = f"Obtain again: {names} (too old to use as current)"
    if len(summary) > 80:
        summary = "Obtain again the values listed: too old to use as current"
    specs = tables().observation_inputs
    lines = [f"- {o.label} {kit.observed_text(o)} at {kit.when(o.at)} (`{o.reference}`): older than "
             f"{specs[o.input].fresh_hours:g} h" for o in inputs.stale.values()]
    lines += [f"- {f.label} at {kit.when(f.at)} (`{f.reference}`): older than its window" for f in stale_findings]
    detail = kit.join(
        "Each input has a freshness window (engine rules: the sources are silent). A value older than its window "
        "is listed here and is not used as the current value: obtain it again.",
        "\n".join(lines),
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "info", detail, kit.source(base, "hemoptysis-data-quality"))
