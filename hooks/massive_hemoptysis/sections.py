"""The sections the massive-hemoptysis cards share: what the record says that changes the plan, the do-now steps,
why (triggers, the values that decided, populations, modifiers, localisation, rules, scores), what is missing.
Prose comes from cql_equivalents/data/card_text.toml."""
from __future__ import annotations

from functools import cache

from cql_equivalents.results import CareContext
from cql_equivalents.engine import Assessment
from cql_equivalents.model import EngineInputs
from cql_equivalents.results import Severity
from cql_equivalents.localization import study_on_record
from cql_equivalents.support import on_support_at
from cql_equivalents.tables import load, tables

from ..cards.clinician_words import plain
from ..cards.markdown import missing_line, numbered, observed_text, records_not_used, when
from ..cards.prose import card_text

PHYSIOLOGY = ("spo2", "respiratory_rate", "heart_rate", "systolic_bp")
LABS = ("hemoglobin", "inr", "platelets", "fibrinogen", "aptt")


def rules_text(assessment: Assessment, kinds: tuple[str, ...] = ("contraindicated", "not-indicated", "caution", "sequence"),
               only: tuple[str, ...] = ()) -> str:
    """The contraindication / caution rules that apply, as a card section (all of them, or only the keys given)."""
    rules = [r for r in assessment.rules if r.kind in kinds and (not only or r.key in only)]
    if not rules:
        return ""
    return "**Contraindications and cautions on record**\n\n" + "\n".join(
        f"- **{r.kind}: {r.intervention}**: {r.text} Because: {', '.join(r.because)}. _({r.source})_" for r in rules)


def target_role(assessment: Assessment) -> str:
    roles = {match.bae for match in assessment.populations}
    return "not_target" if "not-target" in roles else "pa_targeted" if "pa-targeted" in roles else "target"


def definitive_step(assessment: Assessment) -> str:
    """Definitive control for this patient: BAE, unless a population changes the target (then its own path)."""
    words = card_text()["definitive"]
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
        return card_text()["txa"]
    return f"tranexamic acid is not offered ({rule.kind}; because {', '.join(rule.because)}): {rule.text}"


def do_now(steps: list[str], assessment: Assessment, words: dict | None = None) -> str:
    """The numbered steps; with the card's `words`, its CT angiography step says the study is on record when this
    episode holds one (localization.study_on_record: the order is then not offered again, cards/offers.py)."""
    fields = {"definitive": definitive_step(assessment), "txa": txa_text(assessment)}
    steps = list(steps)
    on_record = (words or {}).get("cta_on_record")
    study = cta_on_record(assessment.inputs) if on_record else None
    if study is not None:
        steps[on_record["step"]] = on_record["text"].replace("{record}", f"`{study.reference}`, {when(study.at)}")
    return "**Do now**\n\n" + numbered(step.format_map(fields) for step in steps)


def cta_on_record(inputs: EngineInputs):
    """The episode's CT angiography of the chest a card need not ask for again, or None."""
    return study_on_record(inputs, "ct_angiography_chest")


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
        records = "; ".join(f"`{f.reference}`, {when(f.at)}" for f in context.facts if f.key == effect["context"])
        lines.append(effect["headline"] + (f" ({records})" if records else ""))
        lines += [f"- {caution}" for keys, caution in effect["cautions"] if concerns & set(keys.split("|"))]
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
            (plain(e.label) if trigger.kind == "support" else f"{e.label} {observed_text(e)}")
            + (f" ({e.note})" if e.note else "") + f" (`{e.reference}`, {when(e.at)})"
            for e in trigger.evidence)
        for trigger in severity.triggers)


def decided_by(severity: Severity, inputs: EngineInputs) -> str:
    """Which values drove the decision, when, from which record, and on what support (issue 13 item 2)."""
    lines = [f"- {plain(d.label)}" + ("" if d.input.startswith("support:") else f" {d.value:g} {d.unit}".rstrip())
             + f" at {when(d.at)} (`{d.reference}`)"
             + (f", taken on: {', '.join(d.on_support)}" if d.on_support and not d.input.startswith("support:") else "")
             + (f"; newest {observed_text(d.newest)} at {when(d.newest.at)} (`{d.newest.reference}`"
                + (f", on {', '.join(on_support_at(inputs, d.newest.at))}" if on_support_at(inputs, d.newest.at) else "")
                + ")" if d.newest else "")
             for d in severity.drivers]
    adjusted = [f"- {plain(item)}" for item in severity.thresholds_adjusted]
    words = card_text()["decided_by"]
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
    words = card_text()["volume_line"]
    if not severity.volume_triggers_below:
        return words["none"]
    thresholds = {row["key"]: f"{row['op']} {row['value']:g}" for row in tables().triggers if row["kind"] == "volume"}
    return words["below"].format(**thresholds) + ", ".join(severity.volume_triggers_below) + "."


def localization_text(assessment: Assessment) -> str:
    loc = assessment.localization
    if not loc.studies:
        return "No CT angiography, bronchoscopy or chest X-ray on record."
    lines = [f"- {study.label} (`{study.reference}`, {when(study.at)})"
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
        f"{o.label} {observed_text(o)} at {when(o.at)} (`{o.reference}`, older than "
        f"{specs[o.input].fresh_hours:g} h)" for o in stale)


@cache
def _calculator_rule() -> tuple[frozenset[str], dict[str, float], tuple[str, ...]]:
    """card_text.toml [calculators] as the names never shown, the least value by name and the reassuring openings
    (the table is loaded once: made once per process, not per card)."""
    rule = card_text()["calculators"]
    return frozenset(rule["never"]), dict(rule["min_value"]), tuple(rule["reassuring"])


def calculator_lines(assessment: Assessment) -> str:
    """Calculators whose reading supports acting; a reassuring one is left out, since it must not reassure."""
    never, min_value, reassuring = _calculator_rule()
    shown = [c for c in assessment.calculations
             if c.value is not None and c.name not in never and c.value >= min_value.get(c.name, 0)
             and not c.interpretation.startswith(reassuring)]
    return ("Scores on record (generic, not hemoptysis-specific):\n\n"
            + "\n".join(f"- {c.name} {c.value:g}: {c.interpretation}" for c in shown)) if shown else ""


def why(*parts: str) -> str:
    body = "\n\n".join(part for part in parts if part)
    return "**Why**\n\n" + body if body else ""


def missing(inputs: EngineInputs, names) -> str:
    parts = [missing_line(inputs, names), age_unknown_text(inputs), stale_text(inputs, names), records_not_used(inputs)]
    body = "\n\n".join(part for part in parts if part)
    return "**What is missing**\n\n" + body if body else ""


def age_unknown_text(inputs: EngineInputs) -> str:
    """The adult pathway applied without an age on record: said, not assumed silently."""
    if inputs.age_years is not None:
        return ""
    return card_text()["age_unknown"]["text"].format(adult_from=load("triggers")["scope"]["adult_from_years"])


def population_lines(assessment: Assessment) -> str:
    """Why the definitive control changed: each population that changes the target, with its records."""
    changed = [m for m in assessment.populations if m.bae != "target"]
    return "\n".join(f"- {m.label}: " + "; ".join(m.evidence) for m in changed)


def population_sources(assessment: Assessment) -> str:
    return "; ".join(match.source for match in assessment.populations if match.bae != "target")
