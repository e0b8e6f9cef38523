"""Service `massive-hemoptysis` on patient-view: escalation, antithrombotic reversal and sibling-engine cards.

Clinical logic lives in cql_equivalents/; this module turns its results into CDS Hooks cards.
"""
from __future__ import annotations

from cql_equivalents.causes import CauseGroup
from cql_equivalents.engine import Assessment, assess
from cql_equivalents.inputs import EngineInputs, map_inputs
from cql_equivalents.reversal import ReversalPlan, need_label
from cql_equivalents.severity import Level, Severity
from cql_equivalents.support import on_support_at
from cql_equivalents.tables import tables
from cql_equivalents.terminology import active as site_terminology

from . import card_actions as actions
from . import card_kit as kit
from .engine_cards import card_populations, data_quality_card, population_card, report_card, rules_text
from .service import CdsService, Evaluation

PHYSIOLOGY = ("spo2", "respiratory_rate", "heart_rate", "systolic_bp")
LABS = ("hemoglobin", "inr", "platelets", "fibrinogen", "aptt")
# Further inputs the prefetch asks for: vitals for NEWS2 / A-a gradient, labs for SOFA / HAS-BLED / reversal.
EXTRA_VITALS = ("diastolic_bp", "temperature", "fio2", "o2_flow", "body_weight")
EXTRA_LABS = ("pao2", "paco2", "creatinine", "bilirubin", "anti_xa_heparin", "anti_xa_drug", "dabigatran_level")


def _observation_codes(kind: str) -> str:
    """The codes the engine reads, derived from the input tables (so prefetch and logic cannot drift)."""
    specs = tables().observation_inputs
    names = (*PHYSIOLOGY, *EXTRA_VITALS) if kind == "vitals" else (*LABS, *EXTRA_LABS)
    codes: list[str] = []
    for name in names:
        for code in (*specs[name].loinc, *specs[name].panel):
            if code not in codes:
                codes.append(code)
    tokens = [f"http://loinc.org|{code}" for code in codes]
    if kind == "vitals":  # the local hemoptysis-volume code (no LOINC exists, clinical.md A1)
        volume = tables().bleeding["volume"]
        tokens += [f"{volume['local_system']}|{code}" for code in volume["local_codes"]]
        # every flowsheet row the site ConceptMap names (vitals, labs, volume, device rows)
        tokens += [f"{system}|{code}" for system, code in site_terminology().local_codes("observation")]
    else:  # results read as findings (type & screen, ANCA, anti-GBM) that have a LOINC code
        tokens += [f"http://loinc.org|{code}" for code in tables().finding_loinc if code not in codes]
    return ",".join(dict.fromkeys(tokens))


def prefetch_templates() -> dict[str, str]:
    """The templates, with the codes the installed site ConceptMap names (rebuilt when a map is installed)."""
    return {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "vitals": "Observation?patient={{context.patientId}}&code=" + _observation_codes("vitals") + "&_sort=-date&_count=50",
        "labs": "Observation?patient={{context.patientId}}&code=" + _observation_codes("labs") + "&_sort=-date&_count=50",
        # _include brings the Medication a medicationReference points to (otherwise the drug cannot be known)
        "medicationStatements": "MedicationStatement?patient={{context.patientId}}&_include=MedicationStatement:medication",
        "medicationRequests": "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
        "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}&_sort=-effective-time&_count=50"
                                     "&_include=MedicationAdministration:medication",
        "procedures": "Procedure?patient={{context.patientId}}&_sort=-date&_count=50",
        "diagnosticReports": "DiagnosticReport?patient={{context.patientId}}&_sort=-date&_count=50",
        "imagingStudies": "ImagingStudy?patient={{context.patientId}}&_count=20",
        "questionnaireResponses": "QuestionnaireResponse?patient={{context.patientId}}&_sort=-authored&_count=20",
        # respiratory support devices (support.toml): the Device each statement points to comes with it
        "deviceUseStatements": "DeviceUseStatement?patient={{context.patientId}}&_include=DeviceUseStatement:device",
        "deviceRequests": "DeviceRequest?patient={{context.patientId}}&_include=DeviceRequest:device",
    }


PREFETCH = prefetch_templates()

# Seed 004 phase 9 and clinical.md D: the trials used nebulised TXA 500 mg TID (Wand 2018, non-massive) and
# IV 500 mg TID as comparator (Gopinath 2023); the dossier's "IV 1 g" has no hemoptysis RCT behind it.
TXA_TEXT = (
    "tranexamic acid: nebulised 500 mg three times daily (Wand, Chest 2018, PMID 30321510: resolution 96 % vs 50 %; "
    "Gopinath, Chest 2023, PMID 36410494: fewer BAE than IV); IV 500 mg three times daily was the trial comparator. "
    "The dossier's IV 1 g has no hemoptysis RCT behind it (clinical.md D)"
)


def evaluate(evaluation: Evaluation) -> list[dict]:
    inputs = map_inputs(evaluation.pool, evaluation.now)
    assessment = assess(inputs)
    severity = assessment.severity
    if severity.level is Level.NO_HEMOPTYSIS:
        return []  # nothing to say: this service speaks only when there is bleeding to manage
    base = evaluation.links.public_base_url
    if severity.level is Level.NOT_ADULT:
        return [actions.attach(_not_adult_card(severity, inputs, base), evaluation, inputs, severity)]  # adult thresholds and doses must not reach a child
    if severity.level is Level.ROUTED_AWAY:
        # the blood's source is managed elsewhere (GI / ENT): one card, info unless there is compromise
        return [actions.attach(_frame_card(severity, inputs, base, assessment), evaluation, inputs, severity)]
    cards = [actions.attach(_severity_card(severity, inputs, base, assessment), evaluation, inputs, severity)]
    cards += [actions.attach(_reversal_card(plan, severity, inputs, base, assessment), evaluation, inputs, severity, plan)
              for plan in assessment.reversal]
    routed = severity.level in (Level.ROUTED_AWAY, Level.SOURCE_UNCLEAR)
    causes = assessment.causes
    if causes and not routed:
        cards.append(actions.attach(_causes_card(causes, evaluation, inputs), evaluation, inputs, severity))
    if not routed:
        cards += [actions.attach(population_card(match, assessment, base), evaluation, inputs, severity)
                  for match in card_populations(assessment)]
    stale = data_quality_card(assessment, base)
    if stale:
        cards.append(stale)
    cards.append(report_card(assessment, base))
    return kit.tidy(cards)


# ------------------------------------------------------------------------------------------ severity cards

def _bleeding_text(severity: Severity) -> str:
    evidence = severity.frame.hemoptysis if severity.frame else []
    return "; ".join(f"{item.label} (`{item.reference}`)" for item in evidence) or "hemoptysis"


def _severity_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment | None = None) -> dict:
    assessment = assessment or assess(inputs)
    if severity.level in (Level.ROUTED_AWAY, Level.SOURCE_UNCLEAR):
        return _frame_card(severity, inputs, base, assessment)
    if severity.level is Level.MASSIVE:
        return _escalation_card(severity, inputs, base, assessment)
    if severity.level is Level.UNDETERMINED:
        return _undetermined_card(severity, inputs, base, assessment)
    if severity.level is Level.SEVERE_BY_MODIFIER:
        return _severe_by_modifier_card(severity, inputs, base, assessment)
    return _first_line_card(severity, inputs, base, assessment)


def _trigger_short(severity: Severity) -> str:
    parts = []
    for trigger in severity.triggers:
        if trigger.key == "shock_index":
            parts.append(f"shock index {trigger.value:g}")
        elif trigger.kind in ("volume", "support"):
            parts.append(trigger.label)
        else:
            parts.append(f"{trigger.evidence[0].label} {kit.observed_text(trigger.evidence[0])}")
    return ", ".join(dict.fromkeys(parts))


def _fired_lines(severity: Severity) -> str:
    return "\n".join(
        f"- **{trigger.label}**: " + ", ".join(
            (kit.plain(e.label) if trigger.kind == "support" else f"{e.label} {kit.observed_text(e)}")
            + (f" ({e.note})" if e.note else "") + f" (`{e.reference}`, {kit.when(e.at)})"
            for e in trigger.evidence)
        + f" ({trigger.source})"
        for trigger in severity.triggers)


def _decided_by_text(severity: Severity, inputs: EngineInputs) -> str:
    """Which values drove the decision, when, from which record, and on what support (issue 13 item 2)."""
    lines = [f"- {kit.plain(d.label)}" + ("" if d.input.startswith("support:") else f" {d.value:g} {d.unit}".rstrip())
             + f" at {kit.when(d.at)} (`{d.reference}`)"
             + (f", taken on: {', '.join(d.on_support)}" if d.on_support and not d.input.startswith("support:") else "")
             + (f"; newest {kit.observed_text(d.newest)} at {kit.when(d.newest.at)} (`{d.newest.reference}`"
                + (f", on {', '.join(on_support_at(inputs, d.newest.at))}" if on_support_at(inputs, d.newest.at) else "")
                + ")" if d.newest else "")
             for d in severity.drivers]
    adjusted = [f"- {kit.plain(text)}" for text in severity.thresholds_adjusted]
    parts = []
    if lines:
        parts.append("**Decided by** (for vital signs the worst value of the last 6 h, an engine choice, not only "
                     "the newest)\n\n"
                     + "\n".join(lines))
    if adjusted:
        parts.append("**Cut-offs judged against this patient's terrain**\n\n" + "\n".join(adjusted))
    if any(t.kind == "support" for t in severity.triggers):
        parts.append("_Support is the compromise (seed 004 pivot 2; Ibrahim, Eur Respir J 2008): FiO2 >= 0.4 and "
                     "O2 flow >= 10 L/min are engine choices, no guideline gives a cut-off._")
    return "\n\n".join(parts)


def _modifier_text(severity: Severity) -> str:
    if not severity.modifiers:
        return ""
    return ("**Severity modifiers** (seed 000, OIC-205-08-B: severity = abundance + terrain + cause)\n\n" + "\n".join(
        f"- {m.label}: " + ", ".join(f"`{r}`" for r in m.references) + f" ({m.source})" for m in severity.modifiers))


def _definitive_control_step(assessment: Assessment) -> str:
    """Step 3 of the escalation: BAE, unless a special population changes the target."""
    roles = {match.bae: match for match in assessment.populations}
    if "not-target" in roles:
        return ("3. **Not a bronchial artery embolisation target**: " + roles["not-target"].label + " on record. "
                "Pulse methylprednisolone with cyclophosphamide or rituximab (± plasma exchange case by case): see "
                "its card.\n")
    if "pa-targeted" in roles:
        return ("3. **Pulmonary-artery source suspected** (" + roles["pa-targeted"].label + "): PA-targeted "
                "embolisation (coil / balloon), not bronchial artery embolisation; see its card.\n")
    return ("3. **Bronchial artery embolisation** is the definitive first-line control (immediate control about 85-90 %, "
            "PMID 18210312, figure not re-verified).\n")


def _localization_text(assessment: Assessment) -> str:
    loc = assessment.localization
    if not loc.studies:
        return ("**Localisation**: no CT angiography, bronchoscopy or chest X-ray on record. Bronchial arteries are the "
                "source in about 90 % (Kathuria 2020); the yield of CTA and bronchoscopy is higher during active "
                "bleeding.")
    lines = [f"- {study.label} (`{study.reference}`, {kit.when(study.at)})"
             + (f": {', '.join(c.replace('_', ' ') for c in study.cues)}" if study.cues else "")
             for study in loc.studies]
    notes = []
    if loc.side:
        notes.append(f"side named in the reports: **{loc.side}** (position the bleeding side down)")
    if loc.beds:
        notes.append(f"bleeding bed named: {', '.join(loc.beds)}")
    if loc.repeat_during_active_bleeding:
        notes.append("**a negative study in a quiet interval does not exclude a bronchial source**: repeat CTA / "
                     "bronchoscopy during active bleeding; negatives from the same quiet interval are not independent "
                     "(do not add them up) (seed 004 phase 5; Charya 2021 PMID 34527355)")
    return "**Localisation** (seed 004 pivot 3)\n\n" + "\n".join(lines) + ("\n\n" + "; ".join(notes) + "." if notes else "")


def _stale_text(inputs: EngineInputs, names) -> str:
    stale = [inputs.stale[name] for name in names if name in inputs.stale]
    if not stale:
        return ""
    specs = tables().observation_inputs
    return "**Stale, not used as current (obtain again):** " + ", ".join(
        f"{o.label} {kit.observed_text(o)} at {kit.when(o.at)} (`{o.reference}`, older than "
        f"{specs[o.input].fresh_hours:g} h)" for o in stale)


def _escalation_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment | None = None) -> dict:
    assessment = assessment or assess(inputs)
    triggers = _trigger_short(severity)
    by_volume = severity.fired_by == "volume"
    kind = "by volume" if by_volume else ""
    roles = {match.bae for match in assessment.populations}
    tail = ("ICU, immunosuppression (not a BAE target)" if "not-target" in roles else
            "ICU, IR for PA-targeted embolisation" if "pa-targeted" in roles else "ICU, IR for embolisation")
    summary = f"Massive hemoptysis {kind} ({triggers}): airway first, bleeding side down, {tail}".replace("  ", " ")
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = f"Massive hemoptysis: airway first, bleeding side down, {tail}"
    if by_volume:
        headline = (f"**Life-threatening hemoptysis by volume**: {_bleeding_text(severity)}. No physiologic trigger is "
                    "on record; a volume surrogate fired, a secondary trigger (seed 004 pivot 2: physiology over volume). "
                    "Anatomic dead space is about 150 mL: a small volume can asphyxiate (Charya 2021, PMID 34527355).")
    elif severity.fired_by == "support":
        headline = (f"**Life-threatening hemoptysis: the compromise is held by support**: {_bleeding_text(severity)}. "
                    "Respiratory support or a vasopressor keeps the numbers near normal; needing it is the gas-exchange "
                    "or haemodynamic compromise that defines massive (seed 004 pivot 2; Ibrahim, Eur Respir J 2008).")
    else:
        headline = (f"**Life-threatening hemoptysis by physiology**: {_bleeding_text(severity)}. The killer is "
                    "asphyxiation, not exsanguination (Earwood, Am Fam Physician 2015, PMID 25955625); physiology "
                    "defines massive, whatever the volume (Charya 2021, PMID 34527355).")
    detail = kit.join(
        headline,
        "**Triggers that fired**\n\n" + _fired_lines(severity) + "\n\n_No hemoptysis-specific SpO2, RR or BP cut-off "
        "exists in the guidelines; the NEWS2 red band (RCP 2017) and the shock index are used._",
        _decided_by_text(severity, inputs),
        _modifier_text(severity),
        "**Do now** (Charya 2021, PMID 34527355)\n\n"
        "1. **Airway first**: bleeding side down (lateral decubitus), high-flow oxygen, large-bore suction; selective "
        "intubation / lung isolation (large single-lumen tube into the good lung, bronchial blocker or double-lumen "
        "tube). Do not delay airway control for imaging.\n"
        "2. **ICU** is mandatory; engage interventional radiology, thoracic surgery and interventional pulmonology "
        "together.\n"
        + _definitive_control_step(assessment) +
        "4. **CT angiography of the chest** once the airway is safe: localises side and vessel (bronchial about 90 %) "
        "and maps BAE. Its yield is higher during active bleeding: a negative study in a quiet interval does not "
        "exclude a bronchial source.\n"
        "5. **Reverse anticoagulation / coagulopathy** (see the reversal card if one is shown); " + TXA_TEXT + ".\n"
        "6. Type and crossmatch, haemoglobin, coagulation panel; prepare massive transfusion.",
        _localization_text(assessment),
        rules_text(assessment),
        kit.values_section(inputs, (*PHYSIOLOGY, *LABS)),
        _stale_text(inputs, (*PHYSIOLOGY, *LABS)),
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "critical", detail, kit.source(base, "massive-hemoptysis-escalation"))


def _volume_below_text(severity: Severity) -> str:
    if not severity.volume_triggers_below:
        return ("**Volume**: no hemoptysis volume or rate on record (seed 004 input hemoptysis_volume_rate): quantify "
                "it (single expectoration, mL/h, mL/24 h).")
    return ("**Volume on record, below every surrogate** (>= 150 mL single expectoration, > 100 mL/h, > 500 mL/24 h): "
            + ", ".join(severity.volume_triggers_below) + ".")


def _first_line_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment | None = None) -> dict:
    assessment = assessment or assess(inputs)
    summary = "Hemoptysis, no massive trigger on record: oxygen, monitoring, tranexamic acid, urgent CT angiography for the cause"
    missing = [tables().observation_inputs[name].label for name in severity.missing_physiology]
    detail = kit.join(
        f"**Hemoptysis without a physiologic trigger on record**: {_bleeding_text(severity)}. None of hypoxia "
        "(SpO2 <= 91 %), respiratory distress (RR >= 25 or <= 8 /min), hypotension (SBP <= 90 mmHg) or shock index "
        ">= 1.0 is present (NEWS2 red band, RCP 2017; Koch 2019)."
        + (f" Not on record, so not excluded: {', '.join(missing)}." if missing else ""),
        _volume_below_text(severity),
        _decided_by_text(severity, inputs),
        "**First line, whatever the severity** (seed 000, OIC-205-08-B)\n\n"
        "1. Oxygen and monitoring; re-check SpO2, RR, BP and the volume expectorated: escalate if a trigger appears.\n"
        "2. Vasoconstrictor / antifibrinolytic: " + TXA_TEXT + "; IV terlipressin is the seed's other option.\n"
        "3. **Urgent aetiological work-up with CT angiography of the chest**, in parallel with treatment; treat the "
        "cause urgently if it carries a risk of severe recurrence (e.g. an excavated lesion).\n"
        "4. If bleeding persists: discuss bronchial artery embolisation, or surgery depending on the cause.",
        _localization_text(assessment),
        rules_text(assessment, ("contraindicated", "not-indicated", "caution")),
        kit.values_section(inputs, (*PHYSIOLOGY, *LABS)),
        _stale_text(inputs, (*PHYSIOLOGY, *LABS)),
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "warning", detail, kit.source(base, "hemoptysis-first-line"))


def _severe_by_modifier_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment) -> dict:
    labels = ", ".join(m.label.split(" (")[0] for m in severity.modifiers)
    summary = f"Hemoptysis with {labels}: severe by terrain/cause; intensive-care sector, embolisation considered early"
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = "Hemoptysis severe by terrain / cause: intensive-care sector, embolisation considered from the outset"
    detail = kit.join(
        f"**Hemoptysis without a physiologic or volume trigger**: {_bleeding_text(severity)}. It is not massive, but "
        "severity is abundance plus terrain plus cause (seed 000, OIC-205-08-B), and this record carries a modifier.",
        _modifier_text(severity),
        _volume_below_text(severity),
        _decided_by_text(severity, inputs),
        "**Severe hemoptysis** (seed 000, OIC-205-08-B)\n\n"
        "1. Manage in an intensive-care sector of a centre offering arterial embolisation and thoracic surgery.\n"
        "2. Oxygen, monitoring, vasoconstrictor / antifibrinolytic: " + TXA_TEXT + ".\n"
        "3. Arterial embolisation considered from the outset; urgent CT angiography of the chest for the cause.\n"
        "4. Escalate at once to the airway-first pathway if hypoxia, distress or hypotension appears.",
        _localization_text(assessment),
        rules_text(assessment, ("contraindicated", "not-indicated", "caution")),
        kit.values_section(inputs, (*PHYSIOLOGY, *LABS)),
        _stale_text(inputs, (*PHYSIOLOGY, *LABS)),
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "warning", detail, kit.source(base, "hemoptysis-severe-by-terrain"))


def _undetermined_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment | None = None) -> dict:
    summary = "Hemoptysis on record but no SpO2, respiratory rate or BP: massive hemoptysis not excluded; obtain vitals now"
    detail = kit.join(
        f"**Hemoptysis**: {_bleeding_text(severity)}. Massive hemoptysis is defined by physiology (Charya 2021, "
        "PMID 34527355), and the record holds none of SpO2, respiratory rate or systolic BP (current), so it can be "
        "neither confirmed nor excluded.",
        _volume_below_text(severity),
        _modifier_text(severity),
        "**Obtain now**: SpO2, respiratory rate, blood pressure and heart rate; the volume expectorated. If hypoxic, "
        "in respiratory distress or hypotensive: airway first, bleeding side down, ICU, interventional radiology for "
        "bronchial artery embolisation.",
        "**Meanwhile, first line** (seed 000): oxygen and monitoring, " + TXA_TEXT + ", urgent CT angiography for "
        "the cause.",
        kit.values_section(inputs, (*PHYSIOLOGY, *LABS)),
        _stale_text(inputs, (*PHYSIOLOGY, *LABS)),
        kit.records_not_used(inputs),
    )
    return kit.card(summary, "warning", detail, kit.source(base, "hemoptysis-missing-physiology"))


def _not_adult_card(severity: Severity, inputs: EngineInputs, base: str) -> dict:
    summary = (f"Hemoptysis in a patient aged {inputs.age_years}: this adult engine does not apply; "
               "use the paediatric pathway")
    detail = kit.join(
        f"**Hemoptysis**: {_bleeding_text(severity)}. The patient is {inputs.age_years} years old (`Patient.birthDate`).",
        "This service is built for adults (seed 004: acute airway emergency, adult; clinical.md: adults only). Its "
        "physiologic triggers (NEWS2 red band, shock index) and every dose it gives (4F-PCC, andexanet, protamine, "
        "desmopressin, tranexamic acid) are adult ones, so none is shown. Assess with the paediatric team and its "
        "own early-warning score and dosing.",
        kit.values_section(inputs, PHYSIOLOGY),
    )
    return kit.card(summary, "warning", detail, kit.source(base, "hemoptysis-not-adult"))


def _frame_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment | None = None) -> dict:
    """FRAME gate (seed 004 phase 1): another source of blood routes away instead of escalating."""
    frame = severity.frame
    compromise = bool(severity.triggers)
    routes = "; ".join(frame.routes) or "the pathway of the blood's source"
    alternatives = sorted({e.points_to for e in frame.alternatives})
    if severity.level is Level.ROUTED_AWAY:
        summary = f"Blood source points to {' / '.join(alternatives)}, not hemoptysis: route to {frame.routes[0].split(' (')[0]}"
        topic = "hemoptysis-frame-route-away"
        headline = (f"**FRAME gate: not true hemoptysis.** The record points to {' / '.join(alternatives)}"
                    + (" (decided by the intake questionnaire)" if frame.decided_by_answer else "")
                    + f". Route: {routes}. The massive-hemoptysis escalation (bronchial artery embolisation) does not "
                    "apply; misclassification sends the patient to the wrong pathway (seed 004 phase 1; Earwood 2015, "
                    "PMID 25955625).")
    else:
        summary = f"Blood source unclear (hemoptysis vs {' / '.join(alternatives)}): confirm the source before escalating"
        topic = "hemoptysis-source-unclear"
        headline = ("**FRAME gate: the source of the blood is unclear.** The record holds features of true hemoptysis "
                    f"and of {' / '.join(alternatives)}. Confirm at the bedside (cough vs vomiting, frothy bright red vs "
                    "dark / coffee-ground, nasopharyngeal inspection) and record it in the intake questionnaire "
                    "(item blood-source) before the hemoptysis pathway escalates (Earwood 2015, PMID 25955625).")
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = summary[: kit.SUMMARY_LIMIT - 1]
    evidence = "\n".join(f"- {e.label} -> {e.points_to} (`{e.reference}`)" for e in (*frame.hemoptysis, *frame.alternatives))
    compromise_text = ""
    if compromise:
        compromise_text = ("**Physiologic compromise whatever the source**: " + _trigger_short(severity) + ". Protect the "
                           "airway, oxygen, resuscitate, and call the team of the source now.")
    agents = sorted({plan.agent for plan in assessment.reversal}) if assessment else []
    agents_text = (f"**On {', '.join(agents)}**: hold it; the pathway of the source decides on reversal."
                   if agents and severity.level is Level.ROUTED_AWAY else "")
    # routed away: an info card (the service is not the pathway); unclear source: a warning to confirm it
    indicator = "critical" if compromise else "info" if severity.level is Level.ROUTED_AWAY else "warning"
    detail = kit.join(headline, "**Evidence read**\n\n" + evidence, compromise_text, agents_text,
                      kit.values_section(inputs, PHYSIOLOGY), kit.records_not_used(inputs))
    return kit.card(summary, indicator, detail, kit.source(base, topic))


# ------------------------------------------------------------------------------------------ reversal cards

def _lab_text(plan: ReversalPlan, inputs: EngineInputs | None = None) -> str:
    if plan.lab is None:
        spec = tables().reversal_classes[plan.drug_class]
        stale = inputs.stale.get(spec["lab"]) if inputs else None
        if stale:
            return (f"stale: {kit.observed_text(stale)} at {kit.when(stale.at)} (`{stale.reference}`), not used as "
                    "current; obtain now")
        return "not on record"
    return f"{kit.observed_text(plan.lab)} (`{plan.lab.reference}`, {kit.when(plan.lab.at)})"


def _reversal_card(plan: ReversalPlan, severity: Severity, inputs: EngineInputs, base: str,
                   assessment: Assessment | None = None) -> dict:
    assessment = assessment or assess(inputs)
    spec = tables().reversal_classes[plan.drug_class]
    lab_short = f", {plan.lab.label} {kit.observed_text(plan.lab)}" if plan.lab else ""
    massive = severity.level is Level.MASSIVE
    # the FRAME gate may have routed the blood elsewhere: then it is "bleeding", not "hemoptysis"
    bleeding = "Bleeding" if severity.level in (Level.ROUTED_AWAY, Level.SOURCE_UNCLEAR) else "Hemoptysis"
    if massive:
        summary = f"Reverse {plan.agent} now ({'massive hemoptysis'}{lab_short}): {spec['summary']}"
    else:
        summary = f"{bleeding} on {plan.agent}{lab_short}: hold it; if bleeding is life-threatening give {spec['summary']}"
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = f"{'Reverse' if massive else bleeding + ' on'} {plan.agent}: {spec['summary']}"[: kit.SUMMARY_LIMIT - 1]
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
    agent_rules = tuple(r.key for r in assessment.rules if any(f"`{use.reference}`" in " ".join(r.because) for use in plan.uses)
                        or r.intervention in ("4F-PCC", "4F-PCC / andexanet"))
    detail = kit.join(
        f"**Active {plan.class_label}**\n\n{uses}",
        f"**Lab that tells its effect**: {plan.lab_label}. Value: {_lab_text(plan, inputs)}."
        + (f" {plan.lab_note}." if plan.lab_note else ""),
        when_text,
        "**Reversal**\n\n" + steps,
        ("**Obtain to complete the dose:** " + ", ".join(need_label(n) for n in needs)) if needs else "",
        rules_text(assessment, only=agent_rules) if agent_rules else "",
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
        "For adults with hemoptysis on record: checks the blood's source first (hemoptysis vs hematemesis vs "
        "pseudohemoptysis), classifies massive vs non-massive by physiology (SpO2, respiratory rate, blood pressure, "
        "shock index) then by volume, raises severity for terrain and cause, gives the airway-first escalation or the "
        "first-line work-up, the special-population path (DAH/vasculitis, CF/bronchiectasis, post-TB/mycetoma, "
        "malignancy, iatrogenic pulmonary-artery rupture), the reversal of any active anticoagulant or antiplatelet "
        "agent with its lab and dose, the engine's phase report with NEWS2 / SOFA / HAS-BLED, and links to the engine "
        "of the underlying cause."
    ),
    usage_requirements=(
        "Needs read access to Patient, Condition, Observation, MedicationStatement, MedicationRequest, "
        "MedicationAdministration, Procedure, DiagnosticReport, ImagingStudy and QuestionnaireResponse, by prefetch or through "
        "fhirServer + fhirAuthorization. Hemoptysis volume uses the local code "
        "urn:hemoptysis-cds:CodeSystem:engine-inputs|hemoptysis-volume (no LOINC exists) or the intake questionnaire "
        "urn:hemoptysis-cds:Questionnaire:hemoptysis-intake (docs/engine.md). Adults only. Cards are decision support; "
        "they do not replace bedside assessment."
    ),
    prefetch=PREFETCH,
    evaluate=evaluate,
)
