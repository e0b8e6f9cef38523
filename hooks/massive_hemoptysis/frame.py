"""FRAME gate (seed 004 phase 1): when the blood's source is not the airway, or is unclear, this card takes the
place of the bleeding card: route to the source's pathway, or confirm the source before escalating."""
from __future__ import annotations

from cql_equivalents.model import EngineInputs
from cql_equivalents.reversal_due import hold_text, reversal_card_due
from cql_equivalents.results import Level, Severity

from ..cards.builder import card, source
from ..cards.markdown import join, observed_text, records_not_used, values_section
from ..cards.summary import fit
from .sections import PHYSIOLOGY

# by level (tests/scenarios.py has no FRAME scenario, so test_card_conformance does not require these two; the
# fixtures under fixtures/scenarios/frame-gate/ emit both)
FRAME_TOPICS = {Level.ROUTED_AWAY: "hemoptysis-frame-route-away", Level.SOURCE_UNCLEAR: "hemoptysis-source-unclear"}


def frame_topic(severity: Severity) -> str:
    return FRAME_TOPICS.get(severity.level, FRAME_TOPICS[Level.SOURCE_UNCLEAR])


def trigger_short(severity: Severity) -> str:
    parts = []
    for trigger in severity.triggers:
        if trigger.key == "shock_index":
            parts.append(f"shock index {trigger.value:g}")
        elif trigger.kind in ("volume", "support"):
            parts.append(trigger.label)
        else:
            parts.append(f"{trigger.evidence[0].label} {observed_text(trigger.evidence[0])}")
    return ", ".join(dict.fromkeys(parts))


def frame_card(severity: Severity, inputs: EngineInputs, base: str) -> dict:
    """FRAME gate (seed 004 phase 1): another source of blood routes away instead of escalating."""
    frame = severity.frame
    compromise = bool(severity.triggers)
    routes = "; ".join(frame.routes) or "the pathway of the blood's source"
    alternatives = sorted({e.points_to for e in frame.alternatives})
    if severity.level is Level.ROUTED_AWAY:
        route = frame.routes[0].split(" (")[0]
        summary = fit(["Route to {route}: the blood points to {alt}, not hemoptysis", "Route to {route}: not hemoptysis",
                             "Route to {team}: not hemoptysis", "Route to the pathway of the source: not hemoptysis"],
                            route=route, team=route.split(" of ")[0], alt=" / ".join(alternatives))
        headline = (f"**FRAME gate: not true hemoptysis.** The record points to {' / '.join(alternatives)}"
                    + (" (decided by the intake questionnaire)" if frame.decided_by_answer else "")
                    + f". Route: {routes}. The massive-hemoptysis escalation (bronchial artery embolisation) does not "
                    "apply; misclassification sends the patient to the wrong pathway (seed 004 phase 1; Earwood 2015, "
                    "PMID 25955625).")
    else:
        summary = fit(["Confirm the blood's source now: hemoptysis or {alt}?", "Confirm the blood's source now"],
                            alt=" / ".join(alternatives))
        headline = ("**FRAME gate: the source of the blood is unclear.** The record holds features of true hemoptysis "
                    f"and of {' / '.join(alternatives)}. Confirm at the bedside (cough vs vomiting, frothy bright red vs "
                    "dark / coffee-ground, nasopharyngeal inspection) and record it in the intake questionnaire "
                    "(item blood-source) before the hemoptysis pathway escalates (Earwood 2015, PMID 25955625).")
    evidence = "\n".join(f"- {e.label} -> {e.points_to} (`{e.reference}`)" for e in (*frame.hemoptysis, *frame.alternatives))
    compromise_text = ""
    if compromise:
        compromise_text = ("**Physiologic compromise whatever the source**: " + trigger_short(severity) + ". Protect the "
                           "airway, oxygen, resuscitate, and call the team of the source now.")
    # no reversal card: hold each antithrombotic on board, and say when reversal would be due (ACC 2020)
    agents_text = "" if reversal_card_due(severity) else hold_text(inputs)
    # routed away: an info card (the service is not the pathway); unclear source: a warning to confirm it
    indicator = "critical" if compromise else "info" if severity.level is Level.ROUTED_AWAY else "warning"
    detail = join(headline, "**Evidence read**\n\n" + evidence, compromise_text, agents_text,
                      values_section(inputs, PHYSIOLOGY), records_not_used(inputs))
    return card(summary, indicator, detail, source(base, frame_topic(severity)))
