"""The one card about the bleeding itself: escalation (massive), severe by terrain, first line, vitals missing,
or a patient under 18. Prose comes from cql_equivalents/data/card_text.toml.

Layout (issue 13 item 9): summary <= 80 characters, action first; detail in the order
context that changes the plan -> do now -> why (values used, with time and record) -> what is missing -> sources.
The definitive-control step follows the engine's special populations (the same matches that decide the orders).
"""
from __future__ import annotations

from functools import cache

from cql_equivalents.results import Assessment, CareContext, Level, PaediatricEmergency, Severity
from cql_equivalents.model import EngineInputs
from cql_equivalents.support import on_support_at
from cql_equivalents.tables import load, tables

from . import card_kit as kit
from .engine_cards import rules_text

PHYSIOLOGY = ("spo2", "respiratory_rate", "heart_rate", "systolic_bp")
LABS = ("hemoglobin", "inr", "platelets", "fibrinogen", "aptt")


@cache
def text() -> dict:
    return load("card_text")


def fit(variants: list[str], **fields) -> str:
    """The first variant that fits the summary limit (each is action first)."""
    limit = text()["summary_limit"]
    filled = [variant.format(**fields) for variant in variants]
    fitting = next((item for item in filled if len(item) <= limit), None)
    if fitting is not None:
        return fitting
    return filled[-1][:limit].rsplit(" ", 1)[0]  # never a word cut in half


# ------------------------------------------------------------------------------------------ shared sections

def target_role(assessment: Assessment) -> str:
    roles = {match.bae for match in assessment.populations}
    return "not_target" if "not-target" in roles else "pa_targeted" if "pa-targeted" in roles else "target"


def definitive_step(assessment: Assessment) -> str:
    """Definitive control for this patient: BAE, unless a population changes the target (then its own path)."""
    words = text()["definitive"]
    lines = []
    for match in assessment.populations:
        if match.bae == "not-target":
            lines.append(words["not_target"].format(label=match.label, steps=" ".join(match.steps[1:])))
        elif match.bae == "pa-targeted":
            lines.append(words["pa_targeted"].format(label=match.label, steps=" ".join(match.steps[1:])))
    return " ".join(dict.fromkeys(lines)) or words["target"]


def txa_text(assessment: Assessment) -> str:
    """The tranexamic-acid step, unless a rule that applies advises against it (DIC): the text must not advise what
    the answer does not offer (contraindications.toml `advises_against`)."""
    against = assessment.advised_against or {}
    rule = against.get("txa_iv") or against.get("txa_nebulised")
    if rule is None:
        return text()["txa"]
    return f"tranexamic acid is not offered ({rule.kind}; because {', '.join(rule.because)}): {rule.text}"


def do_now(steps: list[str], assessment: Assessment) -> str:
    fields = {"definitive": definitive_step(assessment), "txa": txa_text(assessment)}
    return "**Do now**\n\n" + "\n".join(f"{i}. {step.format(**fields)}" for i, step in enumerate(steps, 1))


def context_section(context: CareContext | None, assessment: Assessment | None = None) -> str:
    """What the record says that changes how the plan is carried out: said first, with the cautions that concern
    this patient's populations and drugs."""
    if context is None or not context.effects:
        return ""
    concerns = {"any"}
    if assessment is not None:
        concerns |= {m.key for m in assessment.populations} | {u.agent.drug_class for u in assessment.inputs.medications}
    lines = []
    for effect in context.effects:
        records = "; ".join(f"`{f.reference}`, {kit.when(f.at)}" for f in context.facts if f.key == effect["context"])
        lines.append(effect["headline"] + (f" ({records})" if records else ""))
        lines += [f"- {caution}" for when, caution in effect["cautions"] if concerns & set(when.split("|"))]
    return "\n".join(lines)


def summary_extra(context: CareContext | None) -> str:
    """An action the context adds to the summary (", obstetric team"), when its effect names one."""
    actions = [effect["summary_action"] for effect in (context.effects if context else ()) if effect.get("summary_action")]
    return "".join(f", {action}" for action in actions)


def limit_label(context: CareContext | None) -> str:
    if context is None or not context.limits_escalation:
        return ""
    keys = context.keys
    return "DNR on record" if "do_not_resuscitate" in keys else "palliative care on record"


def bleeding_text(severity: Severity) -> str:
    evidence = severity.frame.hemoptysis if severity.frame else []
    return "; ".join(f"{item.label} (`{item.reference}`)" for item in evidence) or "hemoptysis"


def fired_lines(severity: Severity) -> str:
    return "\n".join(
        f"- **{trigger.label}**: " + ", ".join(
            (kit.plain(e.label) if trigger.kind == "support" else f"{e.label} {kit.observed_text(e)}")
            + (f" ({e.note})" if e.note else "") + f" (`{e.reference}`, {kit.when(e.at)})"
            for e in trigger.evidence)
        for trigger in severity.triggers)


def decided_by(severity: Severity, inputs: EngineInputs) -> str:
    """Which values drove the decision, when, from which record, and on what support (issue 13 item 2)."""
    lines = [f"- {kit.plain(d.label)}" + ("" if d.input.startswith("support:") else f" {d.value:g} {d.unit}".rstrip())
             + f" at {kit.when(d.at)} (`{d.reference}`)"
             + (f", taken on: {', '.join(d.on_support)}" if d.on_support and not d.input.startswith("support:") else "")
             + (f"; newest {kit.observed_text(d.newest)} at {kit.when(d.newest.at)} (`{d.newest.reference}`"
                + (f", on {', '.join(on_support_at(inputs, d.newest.at))}" if on_support_at(inputs, d.newest.at) else "")
                + ")" if d.newest else "")
             for d in severity.drivers]
    adjusted = [f"- {kit.plain(item)}" for item in severity.thresholds_adjusted]
    words = text()["decided_by"]
    parts = []
    if lines:
        parts.append(words["drivers"] + "\n\n" + "\n".join(lines))
    if adjusted:
        parts.append(words["adjusted"] + "\n\n" + "\n".join(adjusted))
    if any(t.kind == "support" for t in severity.triggers):
        parts.append("_" + words["support"] + "_")
    return "\n\n".join(parts)


def modifier_lines(severity: Severity) -> str:
    if not severity.modifiers:
        return ""
    return "Severity is abundance plus terrain plus cause; modifiers on record:\n\n" + "\n".join(
        f"- {m.label}: " + ", ".join(f"`{r}`" for r in m.references) for m in severity.modifiers)


def volume_line(severity: Severity) -> str:
    if not severity.volume_triggers_below:
        return "No hemoptysis volume or rate on record: quantify it (single expectoration, mL/h, mL/24 h)."
    return ("Volume on record, below every threshold (>= 150 mL single expectoration, > 100 mL/h, > 500 mL/24 h): "
            + ", ".join(severity.volume_triggers_below) + ".")


def localization_text(assessment: Assessment) -> str:
    loc = assessment.localization
    if not loc.studies:
        return "No CT angiography, bronchoscopy or chest X-ray on record."
    lines = [f"- {study.label} (`{study.reference}`, {kit.when(study.at)})"
             + (f": {', '.join(c.replace('_', ' ') for c in study.cues)}" if study.cues else "")
             for study in loc.studies]
    notes = []
    if loc.side:
        notes.append(f"side named in the reports: **{loc.side}** (position the bleeding side down)")
    if loc.beds:
        notes.append(f"bleeding bed named: {', '.join(loc.beds)}")
    if loc.repeat_during_active_bleeding:
        notes.append("**a negative study in a quiet interval does not exclude a bronchial source**: repeat CT "
                     "angiography / bronchoscopy during active bleeding; negatives from the same quiet interval are "
                     "not independent (do not add them up)")
    return "Imaging and bronchoscopy on record:\n\n" + "\n".join(lines) + ("\n\n" + "; ".join(notes) + "." if notes else "")


def stale_text(inputs: EngineInputs, names) -> str:
    stale = [inputs.stale[name] for name in names if name in inputs.stale]
    if not stale:
        return ""
    specs = tables().observation_inputs
    return "Too old to use as current (obtain again): " + ", ".join(
        f"{o.label} {kit.observed_text(o)} at {kit.when(o.at)} (`{o.reference}`, older than "
        f"{specs[o.input].fresh_hours:g} h)" for o in stale)


def calculator_lines(assessment: Assessment) -> str:
    """Calculators whose reading supports acting; a reassuring one is left out, since it must not reassure."""
    rule = text()["calculators"]
    shown = [c for c in assessment.calculations
             if c.value is not None and c.name not in rule["never"] and c.value >= dict(rule["min_value"]).get(c.name, 0)
             and not any(c.interpretation.startswith(word) for word in rule["reassuring"])]
    return ("Scores on record (generic, not hemoptysis-specific):\n\n"
            + "\n".join(f"- {c.name} {c.value:g}: {c.interpretation}" for c in shown)) if shown else ""


def why(*parts: str) -> str:
    body = "\n\n".join(part for part in parts if part)
    return "**Why**\n\n" + body if body else ""


def missing(inputs: EngineInputs, names, severity: Severity | None = None) -> str:
    parts = [kit.missing_line(inputs, names), stale_text(inputs, names), kit.records_not_used(inputs)]
    body = "\n\n".join(part for part in parts if part)
    return "**What is missing**\n\n" + body if body else ""


def sources(*items: str) -> str:
    cited = "; ".join(dict.fromkeys(item for item in items if item))
    return f"**Sources**: {cited}." if cited else ""


def population_lines(assessment: Assessment) -> str:
    """Why the definitive control changed: each population that changes the target, with its records."""
    changed = [m for m in assessment.populations if m.bae != "target"]
    return "\n".join(f"- {m.label}: " + "; ".join(m.evidence) for m in changed)


def population_sources(assessment: Assessment) -> str:
    return "; ".join(match.source for match in assessment.populations if match.bae != "target")


# ------------------------------------------------------------------------------------------ the cards

def escalation_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                    context: CareContext | None = None) -> dict:
    words = text()["escalation"]
    role = target_role(assessment)
    by_volume = severity.fired_by == "volume"
    first = severity.triggers[0]
    trigger = (f"shock index {first.value:g}" if first.key == "shock_index"
               else first.label if first.kind == "support"
               else kit.observed_text(first.evidence[0]) if first.kind == "volume"
               else f"{first.evidence[0].label} {kit.observed_text(first.evidence[0])}")
    headline = {"volume": words["why_volume"], "support": words["why_support"]}.get(severity.fired_by,
                                                                                   words["why_physiology"])
    limit = limit_label(context)
    if limit:
        summary = fit(words["limited_summary"], limit=limit)
    else:
        summary = fit(words["summary"], short=dict(words["short"])[role], kind=" by volume" if by_volume else "",
                      trigger=trigger, extra=summary_extra(context))
    detail = kit.join(
        context_section(context, assessment),
        do_now(words["steps"], assessment),
        why(f"{headline} Bleeding: {bleeding_text(severity)}.",
            "Triggers that fired:\n\n" + fired_lines(severity) + "\n\n_" + words["no_cutoff"] + "_",
            decided_by(severity, inputs),
            population_lines(assessment), modifier_lines(severity), localization_text(assessment), rules_text(assessment),
            calculator_lines(assessment), kit.values_table(inputs, (*PHYSIOLOGY, *LABS))),
        missing(inputs, (*PHYSIOLOGY, *LABS)),
        sources(words["source"], *(trigger.source for trigger in severity.triggers), text()["txa_source"],
                text()["definitive"]["target_source"] if role == "target" else "", population_sources(assessment)),
    )
    return kit.card(summary, "critical", detail, kit.source(base, "massive-hemoptysis-escalation"))


def first_line_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                    context: CareContext | None = None) -> dict:
    words = text()["first_line"]
    not_on_record = [tables().observation_inputs[name].label for name in severity.missing_physiology]
    detail = kit.join(
        context_section(context, assessment),
        do_now(words["steps"], assessment),
        why(f"Hemoptysis: {bleeding_text(severity)}. {words['why']}"
            + (f" Not on record, so not excluded: {', '.join(not_on_record)}." if not_on_record else ""),
            population_lines(assessment), volume_line(severity), decided_by(severity, inputs), localization_text(assessment),
            rules_text(assessment, ("contraindicated", "not-indicated", "caution")),
            calculator_lines(assessment), kit.values_table(inputs, (*PHYSIOLOGY, *LABS))),
        missing(inputs, (*PHYSIOLOGY, *LABS)),
        sources(words["source"], text()["txa_source"], population_sources(assessment)),
    )
    return kit.card(fit(words["summary"], extra=summary_extra(context)), "warning", detail,
                    kit.source(base, "hemoptysis-first-line"))


def severe_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                context: CareContext | None = None) -> dict:
    words = text()["severe"]
    labels = ", ".join(m.label.split(" (")[0] for m in severity.modifiers)
    role = target_role(assessment)
    variants = words["summary"] if role == "target" else words["summary_not_bae"]
    summary = fit(variants, labels=labels, short=dict(text()["escalation"]["short"])[role])
    detail = kit.join(
        context_section(context, assessment),
        do_now(words["steps"], assessment),
        why(f"Hemoptysis: {bleeding_text(severity)}. {words['why']}", population_lines(assessment),
            modifier_lines(severity), volume_line(severity), decided_by(severity, inputs),
            localization_text(assessment), rules_text(assessment, ("contraindicated", "not-indicated", "caution")),
            calculator_lines(assessment), kit.values_table(inputs, (*PHYSIOLOGY, *LABS))),
        missing(inputs, (*PHYSIOLOGY, *LABS)),
        sources(words["source"], text()["txa_source"], population_sources(assessment)),
    )
    return kit.card(summary, "warning", detail, kit.source(base, "hemoptysis-severe-by-terrain"))


def undetermined_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                      context: CareContext | None = None) -> dict:
    words = text()["undetermined"]
    detail = kit.join(
        context_section(context, assessment),
        do_now(words["steps"], assessment),
        why(f"Hemoptysis: {bleeding_text(severity)}. {words['why']}", population_lines(assessment),
            volume_line(severity), modifier_lines(severity),
            kit.values_table(inputs, (*PHYSIOLOGY, *LABS))),
        missing(inputs, (*PHYSIOLOGY, *LABS)),
        sources(words["source"], text()["txa_source"], population_sources(assessment)),
    )
    return kit.card(fit(words["summary"]), "warning", detail, kit.source(base, "hemoptysis-missing-physiology"))


def not_adult_card(severity: Severity, inputs: EngineInputs, base: str,
                   emergency: PaediatricEmergency | None = None) -> dict:
    """Under 18: no adult threshold, dose or order; an airway emergency still raises a critical card."""
    words = text()["not_adult"]
    age = inputs.age_years
    if emergency:
        summary = fit(words["emergency_summary"], age=age)
        reasons = "Airway emergency: " + "; ".join(emergency.reasons) + "."
        steps = words["emergency_steps"]
    else:
        summary, reasons, steps = fit(words["summary"], age=age), "", words["steps"]
    detail = kit.join(
        "**Do now**\n\n" + "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1)),
        why(f"Hemoptysis: {bleeding_text(severity)}. The patient is {age} years old (date of birth on record).",
            reasons, words["why"], kit.values_table(inputs, PHYSIOLOGY)),
        sources(words["source"], emergency.source if emergency else ""),
    )
    return kit.card(summary, "critical" if emergency else "warning", detail, kit.source(base, "hemoptysis-not-adult"))


def bleeding_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment,
                  context: CareContext | None = None) -> dict:
    build = {Level.MASSIVE: escalation_card, Level.UNDETERMINED: undetermined_card,
             Level.SEVERE_BY_MODIFIER: severe_card}.get(severity.level, first_line_card)
    return build(severity, inputs, base, assessment, context)


def not_adult_declares() -> list[str]:
    return list(text()["not_adult"]["advises_against"])
