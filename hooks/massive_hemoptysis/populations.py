"""The card of a special population that is a decision of its own (today: a coagulopathy with no agent on board to
explain it). The other populations are carried by the cards that act on them. Content from populations.toml."""
from __future__ import annotations

from cql_equivalents.engine import Assessment
from cql_equivalents.results import PopulationMatch

from ..cards.builder import card, source
from ..cards.markdown import join, numbered
from ..cards.topics import population_topic
from .sections import rules_text


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
    detail = join(
        f"**{match.label}**: {bae}.",
        "**Why this path**: " + "; ".join(match.evidence) + ".",
        "**Path** (seed 004 special population)\n\n" + numbered(match.steps),
        sibling,
        rules_text(assessment, only=only) if only else "",
        f"_Source: {match.source}_",
    )
    topic = population_topic(match.key)
    # one critical card for the bleeding: a population's own card is a further decision, never a second alarm
    return card(summary, "warning", detail, source(base, topic))
