"""The haemostatic plan card: coagulation values off the targets of a major-bleeding guideline, what to give for
each, and how DIC, HIT or sepsis change the plan (cql_equivalents/haemostasis.py, data/haemostasis.toml)."""
from __future__ import annotations

from cql_equivalents.results import Assessment, HaemostaticPlan, Level, Severity
from cql_equivalents.haemostasis import SHOWN
from cql_equivalents.model import EngineInputs

from ..cards.builder import card, source
from ..cards.markdown import join, numbered, observed_text, sources, values_section, when
from ..cards.summary import fit
from .sections import rules_text

TOPIC = "haemostatic-plan"


def _summary(plan: HaemostaticPlan, massive: bool) -> str:
    """Action first, within the summary limit (cards.summary.fit): what to give, then the values off target."""
    parts = [row["short"] for row, _ in plan.conditions if row["key"] != "sepsis"]
    parts += [f"{item.observed.label.split(' (')[0]} {item.observed.value:g}" for item in plan.off_target]
    parts = parts or [row["short"] for row, _ in plan.conditions]
    gives = {"platelets": "platelets", "fibrinogen": "fibrinogen", "pt": "plasma"}
    what = ", ".join(dict.fromkeys(gives[item.key] for item in plan.off_target))
    never = "".join(text for key, text in (("pcc_4f", "; no 4F-PCC"), ("txa_iv", "; no tranexamic acid"))
                    if key in plan.advised_against)
    fields = dict(what=what, parts=", ".join(parts), never=never)
    if not what:
        return fit(["Treat the cause ({parts}); components for bleeding only{never}",
                          "Treat the cause; components for bleeding only{never}",
                          "Treat the cause; components for bleeding only"], **fields)
    if massive:
        return fit(["Give {what} now ({parts}){never}", "Give {what} now{never}", "Give {what} now"], **fields)
    return fit(["Give {what} if bleeding is major ({parts}){never}", "Give {what} if bleeding is major{never}",
                      "Give {what} if bleeding is major"], **fields)


def haemostasis_card(plan: HaemostaticPlan, severity: Severity, inputs: EngineInputs, base: str,
                     assessment: Assessment) -> dict:
    massive = severity.level is Level.MASSIVE
    lines = []
    for item in plan.off_target:
        row = item.row
        amount = f" ({item.quantity_text})" if item.quantity_text else ""
        choice = f" _Engine choice: {row['engine_choice']}._" if row.get("engine_choice") else ""
        lines.append(f"- **{item.observed.label} {observed_text(item.observed)}** (`{item.observed.reference}`, "
                     f"{when(item.observed.at)}) {row['op']} {row['threshold']:g}{' ' + row['unit'] if row['unit'] else ''}: "
                     f"{row['target']}. "
                     f"Give {row['give']}{amount}.{choice}")
    conditions = []
    for row, references in plan.conditions:
        conditions.append(f"**{row['label']}** ({', '.join(f'`{r}`' for r in references)})\n\n{numbered(row['steps'])}")
    against = ""
    if plan.advised_against:
        against = "**Not offered on any card:** " + "; ".join(
            f"{key} ({rule.kind}: {rule.intervention}, because {', '.join(rule.because)})"
            for key, rule in plan.advised_against.items())
    timing = ("**Massive hemoptysis is major bleeding: correct now**, and re-check the values after each product."
            if massive else
            "**Components are for bleeding, not for numbers alone** (BSH 2009; Wada 2013): give them if the bleeding "
            "is major or a procedure is planned; re-check the values.")
    detail = join(
        "**Do now**\n\n" + timing + "\n\n" + ("\n".join(lines) or "- no value off target"),
        *conditions,
        "**Why**\n\nHaemostatic targets of the European guideline on major bleeding and coagulopathy (Rossaint "
        "2023), extrapolated from trauma to major hemoptysis (engine choice)."
        + (("\n\nNot applied: " + "; ".join(plan.skipped)) if plan.skipped else ""),
        against,
        rules_text(assessment, kinds=("contraindicated", "not-indicated"),
                   only=tuple(rule.key for rule in plan.advised_against.values())) if plan.advised_against else "",
        values_section(inputs, SHOWN),
        sources("Rossaint R et al. Crit Care 2023 (PMID 36859355)",
                      *(item.row["source"] for item in plan.off_target), *(row["source"] for row, _ in plan.conditions)),
    )
    return card(_summary(plan, massive), "critical" if massive else "warning", detail, source(base, TOPIC))
