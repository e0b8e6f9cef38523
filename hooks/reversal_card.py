"""The patient's ONE antithrombotic reversal card: every agent on board, in order of urgency, each with its lab,
its dose and its orders; a product shared by two agents (desmopressin for two antiplatelets) is written and ordered
once. Clinical content comes from cql_equivalents/reversal.py and patient_reversal.py."""
from __future__ import annotations

from cql_equivalents import formulary
from cql_equivalents.engine import Assessment
from cql_equivalents.inputs import EngineInputs
from cql_equivalents.patient_reversal import PatientReversal
from cql_equivalents.reversal import WITHHELD, ReversalPlan, need_label
from cql_equivalents.severity import Level, Severity
from cql_equivalents.tables import tables

from . import card_kit as kit
from .engine_cards import rules_text

TOPIC = "antithrombotic-reversal"


def _lab_text(plan: ReversalPlan, inputs: EngineInputs) -> str:
    if plan.lab is None:
        spec = tables().reversal_classes[plan.drug_class]
        stale = inputs.stale.get(spec["lab"])
        if stale:
            return (f"stale: {kit.observed_text(stale)} at {kit.when(stale.at)} (`{stale.reference}`), not used as "
                    "current; obtain now")
        return "not on record"
    return f"{kit.observed_text(plan.lab)} (`{plan.lab.reference}`, {kit.when(plan.lab.at)})"


def _class_summary(plan: ReversalPlan, massive: bool, short: bool = False) -> str:
    spec = tables().reversal_classes[plan.drug_class]
    for line in plan.steps:  # a withheld product (4F-PCC in DIC / HIT) must leave the summary too
        if line.product and line.dose.startswith(WITHHELD) and f"summary_without_{line.product}" in spec:
            return spec[f"summary_without_{line.product}"]
    if "summary_none_due" in spec and any(line.none_due for line in plan.steps):
        return spec["summary_none_due"]  # e.g. a heparin infusion stopped before the protamine window
    if short:
        return spec.get("summary_short", spec["summary"])
    summary = spec.get("summary_procedure", spec["summary"]) if massive else spec["summary"]
    return formulary.stocked_summary(summary, plan)  # only what the site stocks


def _summary(reversal: PatientReversal, severity: Severity, massive: bool) -> str:
    plans = reversal.plans
    first = plans[0]
    lab_short = f", {first.lab.label} {kit.observed_text(first.lab)}" if first.lab else ""
    bleeding = "Bleeding" if severity.level in (Level.ROUTED_AWAY, Level.SOURCE_UNCLEAR) else "Hemoptysis"
    agents = " + ".join(reversal.agents)
    by_class = {plan.drug_class: plan for plan in reversed(plans)}  # two antiplatelets: one summary
    later = [by_class[drug_class] for drug_class in dict.fromkeys(plan.drug_class for plan in plans[1:])
             if drug_class != first.drug_class]
    what = "; then ".join([_class_summary(first, massive)] + [_class_summary(plan, massive, True) for plan in later])
    if reversal.stent is not None:  # cardiology before stopping: no "hold it" in the summary
        prefix = f"Reverse {agents} now" if massive else f"{bleeding} on {agents}"
        short = "; then ".join(_class_summary(plan, massive, True) for plan in [first, *later])
        short = short if massive else f"if life-threatening {short}"
        summary = f"{prefix} after a recent coronary stent: cardiology before stopping; {short}"
        return summary if len(summary) < kit.SUMMARY_LIMIT else summary[: kit.SUMMARY_LIMIT - 1]
    if all(any(line.none_due for line in plan.steps) for plan in plans):  # nothing left to reverse on record
        summary = f"{bleeding} on {agents}{' (massive)' if massive else ''}{lab_short}: {what}"
    elif massive:
        summary = f"Reverse {agents} now (massive hemoptysis{lab_short}): {what}"
    else:
        summary = f"{bleeding} on {agents}{lab_short}: hold it; if bleeding is life-threatening give {what}"
    if len(summary) >= kit.SUMMARY_LIMIT:
        summary = f"{'Reverse' if massive else bleeding + ' on'} {agents}: {what}"
    if len(summary) >= kit.SUMMARY_LIMIT and len(plans) > 1:
        summary = (f"{f'Reverse {agents} now' if massive else f'{bleeding} on {agents}'}: one plan, "
                   f"{_class_summary(first, massive)} first")
    return summary[: kit.SUMMARY_LIMIT - 1]


def _agent_section(index: int, plan: ReversalPlan, reversal: PatientReversal, inputs: EngineInputs,
                   written: dict[tuple[str, str], str]) -> str:
    """One agent's lab and steps; a step already written for an earlier agent (same product, same text) is
    referred to, not repeated (`written`: (step, dose text) -> the agent it was written under)."""
    uses = "\n".join(
        f"- {kit.plain(use.text)} (`{use.reference}`, {use.status}, {kit.when(use.at)}; matched by {use.matched_by})"
        + (f"; counted because {use.basis}" if use.basis else "")
        for use in plan.uses)
    steps = []
    for number, line in enumerate(plan.steps, start=1):
        shared = next((order for order in reversal.orders if order.line.order and order.line.order == line.order
                       and len(order.agents) > 1), None)
        if shared is not None and shared.agents[0] != plan.agent:
            steps.append(f"{number}. **{line.agent}**: one dose for {' and '.join(shared.agents)}, written under "
                         f"{shared.agents[0]} above (ordered once)")
            continue
        if shared is None and (line.agent, line.dose) in written:
            steps.append(f"{number}. **{line.agent}**: as for {written[(line.agent, line.dose)]} above")
            continue
        written.setdefault((line.agent, line.dose), plan.agent)
        covers = f" (one dose for {' and '.join(shared.agents)}; ordered once)" if shared is not None else ""
        steps.append(f"{number}. **{line.agent}**: {line.dose}{covers}" + (f". {line.note}" if line.note else "")
                     + f" _({line.source})_")
    lab_note = f" {plan.lab_note}." if plan.lab_note else ""
    return kit.join(
        f"**{index}. {plan.agent}** ({plan.class_label})\n\n{uses}",
        f"**Lab that tells its effect**: {plan.lab_label}. Value: {_lab_text(plan, inputs)}.{lab_note}",
        "**Reversal**\n\n" + "\n".join(steps),
    )


def _agent_sections(reversal: PatientReversal, inputs: EngineInputs) -> list[str]:
    written: dict[tuple[str, str], str] = {}
    return [_agent_section(index, plan, reversal, inputs, written) for index, plan in enumerate(reversal.plans, start=1)]


def reversal_card(reversal: PatientReversal, severity: Severity, inputs: EngineInputs, base: str,
                  assessment: Assessment) -> dict:
    massive = severity.level is Level.MASSIVE
    when_text = ("**Massive hemoptysis is life-threatening bleeding: reverse now** (ACC 2020 ECDP: a reversal agent "
                 "for life-threatening bleeding).") if massive else (
        "**When to reverse** (ACC 2020 ECDP): stop the drug; give a reversal agent if bleeding becomes "
        "life-threatening, or if major bleeding (haemodynamic instability, Hb drop >= 2 g/dL, >= 2 units RBC) "
        "does not resolve.")
    order_text = ""
    if len(reversal.plans) > 1:
        order_text = ("**One plan for " + " + ".join(reversal.agents) + "**, in order of urgency (the anticoagulant's "
                      "specific reversal first, antiplatelet measures last: engine order, data/reversal.toml "
                      "`urgency`); each product is ordered once.")
    stent_text = ""
    if reversal.stent is not None:
        stent = reversal.stent
        when = f"{stent.days_ago} days ago" if stent.days_ago is not None else "date not recorded"
        stent_text = (f"**{stent.label} on record** (`{stent.reference}`, {when}). {stent.rule['text']} "
                      f"_({stent.rule['source']})_")
    needs = sorted({need for plan in reversal.plans for line in plan.steps for need in line.needs})
    references = {f"`{use.reference}`" for plan in reversal.plans for use in plan.uses}
    agent_rules = tuple(r.key for r in assessment.rules if any(ref in " ".join(r.because) for ref in references)
                        or r.intervention in ("4F-PCC", "4F-PCC / andexanet"))
    detail = kit.join(
        stent_text,
        order_text,
        *_agent_sections(reversal, inputs),
        when_text,
        ("**Obtain to complete the dose:** " + ", ".join(need_label(n) for n in needs)) if needs else "",
        rules_text(assessment, only=agent_rules) if agent_rules else "",
        kit.values_section(inputs, ("inr", "aptt", "platelets", "fibrinogen", "hemoglobin", "body_weight")),
    )
    return kit.card(_summary(reversal, severity, massive), "critical" if massive else "warning", detail,
                    kit.source(base, TOPIC))
