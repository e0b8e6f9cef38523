"""Service `massive-hemoptysis` on patient-view: escalation, antithrombotic reversal and sibling-engine cards.

Clinical logic lives in cql_equivalents/; this module turns its results into CDS Hooks cards.
"""
from __future__ import annotations

from cql_equivalents.causes import CauseGroup, underlying_causes
from cql_equivalents.inputs import EngineInputs, map_inputs
from cql_equivalents.reversal import ReversalPlan, reversal_plans
from cql_equivalents.severity import Level, Severity, classify
from cql_equivalents.tables import tables

from . import card_actions as actions
from . import card_kit as kit
from .service import CdsService, Evaluation

PHYSIOLOGY = ("spo2", "respiratory_rate", "heart_rate", "systolic_bp")
LABS = ("hemoglobin", "inr", "platelets", "fibrinogen", "aptt")


def _observation_codes(kind: str) -> str:
    """The LOINC codes the engine reads, derived from the input table (so prefetch and logic cannot drift)."""
    specs = tables().observation_inputs
    names = (*PHYSIOLOGY, "body_weight") if kind == "vitals" else LABS
    codes: list[str] = []
    for name in names:
        for code in (*specs[name].loinc, *specs[name].panel):
            if code not in codes:
                codes.append(code)
    return ",".join(f"http://loinc.org|{code}" for code in codes)


PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "vitals": "Observation?patient={{context.patientId}}&code=" + _observation_codes("vitals") + "&_sort=-date&_count=50",
    "labs": "Observation?patient={{context.patientId}}&code=" + _observation_codes("labs") + "&_sort=-date&_count=50",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
}

# Seed 004 phase 9 and clinical.md D: the trials used nebulised TXA 500 mg TID (Wand 2018, non-massive) and
# IV 500 mg TID as comparator (Gopinath 2023); the dossier's "IV 1 g" has no hemoptysis RCT behind it.
TXA_TEXT = (
    "tranexamic acid: nebulised 500 mg three times daily (Wand, Chest 2018, PMID 30321510: resolution 96 % vs 50 %; "
    "Gopinath, Chest 2023, PMID 36410494: fewer BAE than IV); IV 500 mg three times daily was the trial comparator. "
    "The dossier's IV 1 g has no hemoptysis RCT behind it (clinical.md D)"
)


def evaluate(evaluation: Evaluation) -> list[dict]:
    inputs = map_inputs(evaluation.pool, evaluation.now)
    severity = classify(inputs)
    if severity.level is Level.NO_HEMOPTYSIS:
        return []  # nothing to say: this service speaks only when there is bleeding to manage
    base = evaluation.links.public_base_url
    cards = [actions.attach(_severity_card(severity, inputs, base), evaluation, inputs, severity)]
    cards += [actions.attach(_reversal_card(plan, severity, inputs, base), evaluation, inputs, severity, plan)
              for plan in reversal_plans(inputs)]
    causes = underlying_causes(inputs)
    if causes:
        cards.append(actions.attach(_causes_card(causes, evaluation, inputs), evaluation, inputs, severity))
    return kit.tidy(cards)


# ------------------------------------------------------------------------------------------ severity cards

def _bleeding_text(severity: Severity) -> str:
    return "; ".join(f"{fact.concept.label} (`{fact.reference}`, {kit.when(fact.at)})" for fact in severity.bleeding)


def _severity_card(severity: Severity, inputs: EngineInputs, base: str) -> dict:
    if severity.level is Level.MASSIVE:
        return _escalation_card(severity, inputs, base)
    if severity.level is Level.UNDETERMINED:
        return _undetermined_card(severity, inputs, base)
    return _first_line_card(severity, inputs, base)


def _trigger_short(severity: Severity) -> str:
    parts = []
    for trigger in severity.triggers:
        if trigger.key == "shock_index":
            parts.append(f"shock index {trigger.value:g}")
        else:
            parts.append(f"{trigger.evidence[0].label} {kit.observed_text(trigger.evidence[0])}")
    return ", ".join(dict.fromkeys(parts))


def _escalation_card(severity: Severity, inputs: EngineInputs, base: str) -> dict:
    triggers = _trigger_short(severity)
    summary = f"Massive hemoptysis ({triggers}): airway first, bleeding side down, ICU, IR for bronchial artery embolisation"
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = "Massive hemoptysis: airway first, bleeding side down, ICU, IR for bronchial artery embolisation"
    fired = "\n".join(
        f"- **{trigger.label}**: " + ", ".join(
            f"{e.label} {kit.observed_text(e)} (`{e.reference}`, {kit.when(e.at)})" for e in trigger.evidence)
        + f" ({trigger.source})"
        for trigger in severity.triggers)
    detail = kit.join(
        f"**Life-threatening hemoptysis by physiology**: {_bleeding_text(severity)}. The killer is asphyxiation, "
        "not exsanguination (Earwood, Am Fam Physician 2015, PMID 25955625); physiology defines massive, "
        "whatever the volume (Charya 2021, PMID 34527355).",
        "**Triggers that fired**\n\n" + fired + "\n\n_No hemoptysis-specific SpO2, RR or BP cut-off exists in the "
        "guidelines; the NEWS2 red band (RCP 2017) and the shock index are used._",
        "**Do now** (Charya 2021, PMID 34527355)\n\n"
        "1. **Airway first**: bleeding side down (lateral decubitus), high-flow oxygen, large-bore suction; selective "
        "intubation / lung isolation (large single-lumen tube into the good lung, bronchial blocker or double-lumen "
        "tube). Do not delay airway control for imaging.\n"
        "2. **ICU** is mandatory; engage interventional radiology, thoracic surgery and interventional pulmonology "
        "together.\n"
        "3. **Bronchial artery embolisation** is the definitive first-line control (immediate control about 85-90 %, "
        "PMID 18210312, figure not re-verified).\n"
        "4. **CT angiography of the chest** once the airway is safe: localises side and vessel (bronchial about 90 %) "
        "and maps BAE. Its yield is higher during active bleeding: a negative study in a quiet interval does not "
        "exclude a bronchial source.\n"
        "5. **Reverse anticoagulation / coagulopathy** (see the reversal card if one is shown); " + TXA_TEXT + ".\n"
        "6. Type and crossmatch, haemoglobin, coagulation panel; prepare massive transfusion.",
        kit.values_section(inputs, (*PHYSIOLOGY, *LABS)),
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "critical", detail, kit.source(base, "massive-hemoptysis-escalation"))


def _first_line_card(severity: Severity, inputs: EngineInputs, base: str) -> dict:
    terrain = inputs.conditions_with_role("terrain")
    summary = "Hemoptysis, no massive trigger on record: oxygen, monitoring, tranexamic acid, urgent CT angiography for the cause"
    modifiers = ""
    if terrain:
        modifiers = ("**Terrain raises severity**: " + ", ".join(f"{t.concept.label} (`{t.reference}`)" for t in terrain)
                     + ". Severity is abundance plus terrain plus cause (seed 000, OIC-205-08-B): a smaller bleed can "
                     "be life-threatening here.")
    missing = [tables().observation_inputs[name].label for name in severity.missing_physiology]
    detail = kit.join(
        f"**Hemoptysis without a physiologic trigger on record**: {_bleeding_text(severity)}. None of hypoxia "
        "(SpO2 <= 91 %), respiratory distress (RR >= 25 or <= 8 /min), hypotension (SBP <= 90 mmHg) or shock index "
        ">= 1.0 is present (NEWS2 red band, RCP 2017; Koch 2019)."
        + (f" Not on record, so not excluded: {', '.join(missing)}." if missing else ""),
        modifiers,
        "**First line, whatever the severity** (seed 000, OIC-205-08-B)\n\n"
        "1. Oxygen and monitoring; re-check SpO2, RR, BP and the volume expectorated: escalate if a trigger appears.\n"
        "2. Vasoconstrictor / antifibrinolytic: " + TXA_TEXT + "; IV terlipressin is the seed's other option.\n"
        "3. **Urgent aetiological work-up with CT angiography of the chest**, in parallel with treatment; treat the "
        "cause urgently if it carries a risk of severe recurrence (e.g. an excavated lesion).\n"
        "4. If bleeding persists: discuss bronchial artery embolisation, or surgery depending on the cause.",
        kit.values_section(inputs, (*PHYSIOLOGY, *LABS)),
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "warning", detail, kit.source(base, "hemoptysis-first-line"))


def _undetermined_card(severity: Severity, inputs: EngineInputs, base: str) -> dict:
    summary = "Hemoptysis on record but no SpO2, respiratory rate or BP: massive hemoptysis not excluded; obtain vitals now"
    detail = kit.join(
        f"**Hemoptysis**: {_bleeding_text(severity)}. Massive hemoptysis is defined by physiology (Charya 2021, "
        "PMID 34527355), and the record holds none of SpO2, respiratory rate or systolic BP, so it can be neither "
        "confirmed nor excluded.",
        "**Obtain now**: SpO2, respiratory rate, blood pressure and heart rate; the volume expectorated. If hypoxic, "
        "in respiratory distress or hypotensive: airway first, bleeding side down, ICU, interventional radiology for "
        "bronchial artery embolisation.",
        "**Meanwhile, first line** (seed 000): oxygen and monitoring, " + TXA_TEXT + ", urgent CT angiography for "
        "the cause.",
        kit.values_section(inputs, (*PHYSIOLOGY, *LABS)),
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "warning", detail, kit.source(base, "hemoptysis-missing-physiology"))


# ------------------------------------------------------------------------------------------ reversal cards

def _lab_text(plan: ReversalPlan) -> str:
    if plan.lab is None:
        return "not on record"
    return f"{kit.observed_text(plan.lab)} (`{plan.lab.reference}`, {kit.when(plan.lab.at)})"


def _reversal_card(plan: ReversalPlan, severity: Severity, inputs: EngineInputs, base: str) -> dict:
    spec = tables().reversal_classes[plan.drug_class]
    lab_short = f", {plan.lab.label} {kit.observed_text(plan.lab)}" if plan.lab else ""
    massive = severity.level is Level.MASSIVE
    if massive:
        summary = f"Reverse {plan.agent} now ({'massive hemoptysis'}{lab_short}): {spec['summary']}"
    else:
        summary = f"Hemoptysis on {plan.agent}{lab_short}: hold it; if bleeding is life-threatening give {spec['summary']}"
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = f"{'Reverse' if massive else 'Hemoptysis on'} {plan.agent}: {spec['summary']}"[: kit.SUMMARY_LIMIT - 1]
    uses = "\n".join(
        f"- {kit.plain(use.text)} (`{use.reference}`, {use.status}, {kit.when(use.at)}; matched by {use.matched_by})"
        for use in plan.uses)
    steps = "\n".join(
        f"{index}. **{line.agent}**: {line.dose}" + (f". {line.note}" if line.note else "") + f" _({line.source})_"
        for index, line in enumerate(plan.steps, start=1))
    needs = sorted({need for line in plan.steps for need in line.needs})
    when_text = ("**Massive hemoptysis is life-threatening bleeding: reverse now** (ACC 2020 ECDP: a reversal agent "
                 "for life-threatening bleeding).") if massive else (
        "**When to reverse** (ACC 2020 ECDP): stop the drug; give a reversal agent if bleeding becomes "
        "life-threatening, or if major bleeding (haemodynamic instability, Hb drop >= 2 g/dL, >= 2 units RBC) "
        "does not resolve.")
    detail = kit.join(
        f"**Active {plan.class_label}**\n\n{uses}",
        f"**Lab that tells its effect**: {plan.lab_label}. Value: {_lab_text(plan)}."
        + (f" {plan.lab_note}." if plan.lab_note else ""),
        when_text,
        "**Reversal**\n\n" + steps,
        ("**Obtain to complete the dose:** " + ", ".join(tables().observation_inputs[n].label for n in needs)) if needs else "",
        kit.values_section(inputs, ("inr", "aptt", "platelets", "fibrinogen", "hemoglobin", "body_weight")),
    )
    return kit.card(summary, "critical" if massive else "warning", detail, kit.source(base, "antithrombotic-reversal"))


# ------------------------------------------------------------------------------------------ sibling engines

def _causes_card(groups: list[CauseGroup], evaluation: Evaluation, inputs: EngineInputs) -> dict:
    engine_base = evaluation.links.engine_base_url
    labels = [label for group in groups for label in group.labels]
    summary = f"Underlying cause on record ({', '.join(labels)}): treat it with its own engine once the airway is secure"
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = "Underlying causes on record: treat each with its own engine once the airway is secure"
    lines, links = [], []
    for group in groups:
        records = ", ".join(f"`{fact.reference}`" for fact in group.facts)
        if group.engine:
            lines.append(f"- **{', '.join(group.labels)}** ({records}) -> `{group.engine_id}`: {group.engine['handoff']}")
            links.append({"label": f"{group.engine['title']} ({group.engine_id})",
                          "url": f"{engine_base}/{group.engine_id}", "type": "absolute"})
        else:
            lines.append(f"- **{', '.join(group.labels)}** ({records}): the dossier names no sibling engine for it")
    links.append({"label": "Massive hemoptysis engine dossier", "url": f"{evaluation.links.public_base_url}/docs/engine",
                  "type": "absolute"})
    detail = kit.join(
        "Once the airway is secured, definitive management goes back to the engine of the underlying disease "
        "(seed 004, phases 6 and 12).",
        "\n".join(lines),
    )
    return kit.card(summary, "info", detail, kit.source(evaluation.links.public_base_url, "sibling-engines"),
                    links=links)


SERVICE = CdsService(
    id="massive-hemoptysis",
    hook="patient-view",
    title="Massive hemoptysis: escalation, antithrombotic reversal, underlying cause",
    description=(
        "For adults with hemoptysis on record: classifies massive vs non-massive by physiology (SpO2, respiratory "
        "rate, blood pressure, shock index), gives the airway-first escalation or the first-line work-up, the "
        "reversal of any active anticoagulant or antiplatelet agent with its lab and dose, and links to the "
        "engine of the underlying cause."
    ),
    usage_requirements=(
        "Needs read access to Patient, Condition, Observation, MedicationStatement and MedicationRequest, by "
        "prefetch or through fhirServer + fhirAuthorization. Adults only. Cards are decision support; they do "
        "not replace bedside assessment."
    ),
    prefetch=PREFETCH,
    evaluate=evaluate,
)


