"""The one card about the bleeding itself: escalation (massive), severe by terrain, first line, vitals missing,
or a patient under 18. Prose comes from cql_equivalents/data/card_text.toml.

Layout (issue 13 item 9): summary <= 80 characters, action first; detail in the order
context that changes the plan -> do now -> why (values used, with time and record) -> what is missing -> sources.
The definitive-control step follows the engine's special populations (the same matches that decide the orders).
"""
from __future__ import annotations

from cql_equivalents.results import CareContext, PaediatricEmergency
from cql_equivalents.engine import Assessment
from cql_equivalents.model import EngineInputs
from cql_equivalents.results import Level, Severity
from cql_equivalents.tables import tables

from ..cards.builder import card, source
from ..cards.markdown import join, numbered, observed_text, sources, values_table
from ..cards.prose import card_text
from ..cards.summary import fit
from .sections import (LABS, PHYSIOLOGY, bleeding_text, calculator_lines, context_section, cta_on_record, decided_by, do_now,
                       fired_lines, limit_label, localization_text, missing, modifier_lines, population_lines,
                       population_sources, rules_text, summary_extra, target_role, volume_line, why)

ESCALATION_TOPIC = "massive-hemoptysis-escalation"
FIRST_LINE_TOPIC = "hemoptysis-first-line"
SEVERE_TOPIC = "hemoptysis-severe-by-terrain"
UNDETERMINED_TOPIC = "hemoptysis-missing-physiology"
NOT_ADULT_TOPIC = "hemoptysis-not-adult"


def escalation_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                    context: CareContext | None = None) -> dict:
    words = card_text()["escalation"]
    role = target_role(assessment)
    by_volume = severity.fired_by == "volume"
    first = severity.triggers[0]
    trigger = (f"shock index {first.value:g}" if first.key == "shock_index"
               else first.label if first.kind == "support"
               else observed_text(first.evidence[0]) if first.kind == "volume"
               else f"{first.evidence[0].label} {observed_text(first.evidence[0])}")
    headline = {"volume": words["why_volume"], "support": words["why_support"]}.get(severity.fired_by,
                                                                                   words["why_physiology"])
    limit = limit_label(context)
    if limit:
        summary = fit(words["limited_summary"], limit=limit)
    else:
        summary = fit(words["summary"], short=dict(words["short"])[role], kind=" by volume" if by_volume else "",
                      trigger=trigger, extra=summary_extra(context))
    detail = join(
        context_section(context, assessment),
        do_now(words["steps"], assessment, words),
        why(f"{headline} Bleeding: {bleeding_text(severity)}.",
            "Triggers that fired:\n\n" + fired_lines(severity) + "\n\n_" + words["no_cutoff"] + "_",
            decided_by(severity, inputs),
            population_lines(assessment), modifier_lines(severity), localization_text(assessment), rules_text(assessment),
            calculator_lines(assessment), values_table(inputs, (*PHYSIOLOGY, *LABS))),
        missing(inputs, (*PHYSIOLOGY, *LABS)),
        sources(words["source"], *(trigger.source for trigger in severity.triggers), card_text()["txa_source"],
                card_text()["definitive"]["target_source"] if role == "target" else "", population_sources(assessment)),
    )
    return card(summary, "critical", detail, source(base, ESCALATION_TOPIC))


def first_line_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                    context: CareContext | None = None) -> dict:
    words = card_text()["first_line"]
    not_on_record = [tables().observation_inputs[name].label for name in severity.missing_physiology]
    detail = join(
        context_section(context, assessment),
        do_now(words["steps"], assessment, words),
        why(f"Hemoptysis: {bleeding_text(severity)}. {words['why']}"
            + (f" Not on record, so not excluded: {', '.join(not_on_record)}." if not_on_record else ""),
            population_lines(assessment), volume_line(severity), decided_by(severity, inputs), localization_text(assessment),
            rules_text(assessment, ("contraindicated", "not-indicated", "caution")),
            calculator_lines(assessment), values_table(inputs, (*PHYSIOLOGY, *LABS))),
        missing(inputs, (*PHYSIOLOGY, *LABS)),
        sources(words["source"], card_text()["txa_source"], population_sources(assessment)),
    )
    summary = words["summary_cta_on_record"] if cta_on_record(inputs) else words["summary"]
    return card(fit(summary, extra=summary_extra(context)), "warning", detail,
                    source(base, FIRST_LINE_TOPIC))


def severe_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                context: CareContext | None = None) -> dict:
    words = card_text()["severe"]
    labels = ", ".join(m.label.split(" (")[0] for m in severity.modifiers)
    role = target_role(assessment)
    variants = words["summary"] if role == "target" else words["summary_not_bae"]
    summary = fit(variants, labels=labels, short=dict(card_text()["escalation"]["short"])[role])
    detail = join(
        context_section(context, assessment),
        do_now(words["steps"], assessment, words),
        why(f"Hemoptysis: {bleeding_text(severity)}. {words['why']}", population_lines(assessment),
            modifier_lines(severity), volume_line(severity), decided_by(severity, inputs),
            localization_text(assessment), rules_text(assessment, ("contraindicated", "not-indicated", "caution")),
            calculator_lines(assessment), values_table(inputs, (*PHYSIOLOGY, *LABS))),
        missing(inputs, (*PHYSIOLOGY, *LABS)),
        sources(words["source"], card_text()["txa_source"], population_sources(assessment)),
    )
    return card(summary, "warning", detail, source(base, SEVERE_TOPIC))


def undetermined_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                      context: CareContext | None = None) -> dict:
    words = card_text()["undetermined"]
    detail = join(
        context_section(context, assessment),
        do_now(words["steps"], assessment, words),
        why(f"Hemoptysis: {bleeding_text(severity)}. {words['why']}", population_lines(assessment),
            volume_line(severity), modifier_lines(severity),
            values_table(inputs, (*PHYSIOLOGY, *LABS))),
        missing(inputs, (*PHYSIOLOGY, *LABS)),
        sources(words["source"], card_text()["txa_source"], population_sources(assessment)),
    )
    return card(fit(words["summary"]), "warning", detail, source(base, UNDETERMINED_TOPIC))


def not_adult_card(severity: Severity, inputs: EngineInputs, base: str,
                   emergency: PaediatricEmergency | None = None) -> dict:
    """Under 18: no adult threshold, dose or order; an airway emergency still raises a critical card."""
    words = card_text()["not_adult"]
    age = inputs.age_years
    if emergency:
        summary = fit(words["emergency_summary"], age=age)
        reasons = "Airway emergency: " + "; ".join(emergency.reasons) + "."
        steps = words["emergency_steps"]
    else:
        summary, reasons, steps = fit(words["summary"], age=age), "", words["steps"]
    detail = join(
        "**Do now**\n\n" + numbered(steps),
        why(f"Hemoptysis: {bleeding_text(severity)}. The patient is {age} years old (date of birth on record).",
            reasons, words["why"], values_table(inputs, PHYSIOLOGY)),
        sources(words["source"], emergency.source if emergency else ""),
    )
    return card(summary, "critical" if emergency else "warning", detail, source(base, NOT_ADULT_TOPIC))


_BY_LEVEL = {Level.MASSIVE: (escalation_card, ESCALATION_TOPIC), Level.UNDETERMINED: (undetermined_card, UNDETERMINED_TOPIC),
             Level.SEVERE_BY_MODIFIER: (severe_card, SEVERE_TOPIC)}


def bleeding_topic(severity: Severity) -> str:
    """The topic of the bleeding card for this severity (it decides the card's orders, cards.offers)."""
    return _BY_LEVEL.get(severity.level, (first_line_card, FIRST_LINE_TOPIC))[1]


def bleeding_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                  context: CareContext | None = None) -> dict:
    build = _BY_LEVEL.get(severity.level, (first_line_card, FIRST_LINE_TOPIC))[0]
    return build(severity, inputs, base, assessment, context)


def not_adult_declares() -> list[str]:
    return list(card_text()["not_adult"]["advises_against"])
