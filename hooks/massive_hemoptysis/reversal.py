"""The patient's ONE antithrombotic reversal card: every agent on board, in order of urgency, each with its lab,
its dose and its orders; a product shared by two agents (desmopressin for two antiplatelets) is written and ordered
once. Clinical content comes from cql_equivalents/reversal.py and patient_reversal.py."""
from __future__ import annotations

import re
from collections.abc import Iterable

from cql_equivalents import formulary
from cql_equivalents.results import Assessment, Level, PatientReversal, ReversalPlan, Severity
from cql_equivalents.model import EngineInputs
from cql_equivalents.reversal import WITHHELD, need_label
from cql_equivalents.reversal_due import ACC_2020, reversal_agent_due
from cql_equivalents.tables import tables

from ..cards import answer_guard
from ..cards.builder import card, source
from ..cards.clinician_words import plain
from ..cards.markdown import join, missing_line, observed_text, sources, values_table, when
from ..cards.summary import fit
from .sections import rules_text

TOPIC = "antithrombotic-reversal"
_CONTRAINDICATED = re.compile(r" \(([^()]*) contraindicated\)")


def _lab_text(plan: ReversalPlan, inputs: EngineInputs) -> str:
    if plan.lab is None:
        spec = tables().reversal_classes[plan.drug_class]
        stale = inputs.stale.get(spec["lab"])
        if stale:
            return (f"stale: {observed_text(stale)} at {when(stale.at)} (`{stale.reference}`), not used as "
                    "current; obtain now")
        return "not on record"
    return f"{observed_text(plan.lab)} (`{plan.lab.reference}`, {when(plan.lab.at)})"


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


def _summary(reversal: PatientReversal, severity: Severity, now: bool) -> str:
    """Action first, within the summary limit: the first variant that fits (cards.summary.fit). `now`: a
    reversal agent is due (life-threatening bleeding, reversal_due)."""
    plans = reversal.plans
    first = plans[0]
    lab = f" ({first.lab.label} {observed_text(first.lab)})" if first.lab else ""
    bleeding = "bleeding" if severity.level in (Level.ROUTED_AWAY, Level.SOURCE_UNCLEAR) else "hemoptysis"
    agents = " + ".join(reversal.agents)
    by_class = {plan.drug_class: plan for plan in reversed(plans)}  # two antiplatelets: one summary
    later = [by_class[drug_class] for drug_class in dict.fromkeys(plan.drug_class for plan in plans[1:])
             if drug_class != first.drug_class]
    what = "; then ".join([_class_summary(first, now)] + [_class_summary(plan, now, True) for plan in later])
    short = "; then ".join(_class_summary(plan, now, True) for plan in [first, *later])
    head = short.split(";")[0]
    # "(4F-PCC contraindicated)" said shorter, so that the product ruled out stays in the summary (searched for only
    # when the words are there: most summaries rule nothing out)
    brief = _CONTRAINDICATED.sub(r"; no \1", what) if " contraindicated)" in what else what
    fields = dict(agents=agents, what=what, short=short, head=head, lab=lab, bleeding=bleeding, brief=brief)
    if reversal.stent is not None:  # cardiology before stopping: no "hold it" first
        return fit(["Call cardiology before stopping {agents} (recent stent); {short}",
                          "Call cardiology before stopping {agents} (recent stent); {head}",
                          "Call cardiology before stopping {agents}: recent coronary stent"], **fields)
    if all(any(line.none_due for line in plan.steps) for plan in plans):  # nothing left to reverse on record
        return fit(["Hold {agents}{lab}: {what}", "Hold {agents}: {what}", "Hold {agents}: {head}",
                          "Hold {agents}: no reversal dose due"], **fields)
    if now:
        return fit(["Reverse {agents} now{lab}: {what}", "Reverse {agents} now: {what}",
                          "Reverse {agents} now: {brief}", "Reverse {agents} now: {short}",
                          "Reverse {agents} now: {head}", "Reverse {agents} now"],
                         **fields)
    return fit(["Hold {agents}{lab}; if {bleeding} turns life-threatening: {what}",
                      "Hold {agents}; if {bleeding} turns life-threatening: {what}",
                      "Hold {agents}; if {bleeding} turns life-threatening: {brief}",
                      "Hold {agents}; if {bleeding} turns life-threatening: {short}",
                      "Hold {agents}; if {bleeding} turns life-threatening: {head}",
                      "Hold {agents}; reverse if {bleeding} turns life-threatening"], **fields)


def _steps(index: int, plan: ReversalPlan, reversal: PatientReversal, written: dict[tuple[str, str], str]) -> str:
    """One agent's reversal steps; a step already written for an earlier agent (same product, same text) is
    referred to, not repeated (`written`: (step, dose text) -> the agent it was written under)."""
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
        steps.append(f"{number}. **{line.agent}**: {line.dose}{covers}" + (f". {line.note}" if line.note else ""))
    return f"**{index}. {plan.agent}** ({plan.class_label})\n\n" + "\n".join(steps)


def _why(plan: ReversalPlan, inputs: EngineInputs) -> str:
    """The records that put the agent on board (and why a record that is not active counts) and its lab."""
    uses = "\n".join(
        f"- {plain(use.text)} (`{use.reference}`, {use.status}, {when(use.at)}; matched by {use.matched_by})"
        + (f"; counted because {use.basis}" if use.basis else "")
        for use in plan.uses)
    lab_note = f" {plan.lab_note}." if plan.lab_note else ""
    return (f"{plan.agent} on record:\n\n{uses}\n\nLab that tells its effect: {plan.lab_label}. "
            f"Value: {_lab_text(plan, inputs)}.{lab_note}")


def reversal_card(reversal: PatientReversal, severity: Severity, inputs: EngineInputs, base: str,
                  assessment: Assessment) -> dict:
    now = reversal_agent_due(severity)
    if now:
        when_text = ("Life-threatening bleeding: reverse now (a reversal agent for life-threatening bleeding, "
                     f"{ACC_2020}).")
    else:
        when_text = ("Stop the drug; give a reversal agent if bleeding becomes life-threatening, or if major "
                     "bleeding (haemodynamic instability, Hb drop >= 2 g/dL, >= 2 units RBC) does not resolve "
                     f"({ACC_2020}).")
    order_text = ""
    if len(reversal.plans) > 1:
        order_text = ("One plan for " + " + ".join(reversal.agents) + ", in order of urgency (the anticoagulant's "
                      "specific reversal first, antiplatelet measures last; engine choice); each product is ordered "
                      "once.")
    stent_text = ""
    if reversal.stent is not None:
        stent = reversal.stent
        ago = f"{stent.days_ago} days ago" if stent.days_ago is not None else "date not recorded"
        stent_text = f"{stent.label} on record (`{stent.reference}`, {ago}): {stent.rule['text']}"
    needs = sorted({need for plan in reversal.plans for line in plan.steps for need in line.needs})
    references = {f"`{use.reference}`" for plan in reversal.plans for use in plan.uses}
    agent_rules = tuple(r.key for r in assessment.rules if mentions(" ".join(r.because), references)
                        or r.intervention in ("4F-PCC", "4F-PCC / andexanet"))
    reversal_names = ("inr", "aptt", "platelets", "fibrinogen", "hemoglobin", "body_weight")
    written: dict[tuple[str, str], str] = {}
    missing = [("Obtain to complete the dose: " + ", ".join(need_label(n) for n in needs) + ".") if needs else "",
               missing_line(inputs, reversal_names)]
    detail = join(
        "**Do now**\n\n" + "\n\n".join(part for part in (stent_text, when_text, order_text) if part),
        *(_steps(index, plan, reversal, written) for index, plan in enumerate(reversal.plans, start=1)),
        "**Why**\n\n" + "\n\n".join(_why(plan, inputs) for plan in reversal.plans),
        rules_text(assessment, only=agent_rules) if agent_rules else "",
        values_table(inputs, reversal_names),
        ("**What is missing**\n\n" + "\n\n".join(part for part in missing if part)) if any(missing) else "",
        sources("ACC 2020 Expert Consensus Decision Pathway on bleeding on oral anticoagulants (Tomaselli, "
                      "JACC 2020)", *(reversal.stent.rule["source"] for _ in [0] if reversal.stent is not None),
                      *(line.source for plan in reversal.plans for line in plan.steps)),
    )
    built = card(_summary(reversal, severity, now), "critical" if now else "warning", detail,
                    source(base, TOPIC))
    # a rule this card shows (e.g. 4F-PCC contraindicated in HIT) rules its order out, on this card and answer-wide
    return answer_guard.declare(built, [key for rule in assessment.rules if rule.key in agent_rules for key in rule.advises_against])


def mentions(reasons: str, references: Iterable[str]) -> bool:
    """Whether a rule's reasons (joined once per rule, not once per reference) name one of `references`."""
    return any(reference in reasons for reference in references)
