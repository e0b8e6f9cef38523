"""When reversal is due, following ACC 2020 ECDP (clinical.md C1): stop the anticoagulant for major bleeding; give
a reversal agent for life-threatening bleeding, or for major bleeding that does not resolve.

- Massive hemoptysis is life-threatening bleeding: the reversal card offers the reversal agents as orders.
- Hemoptysis that is not (yet) massive: the card says hold the agent and when a reversal agent would be due; no
  reversal agent is offered as an order (4F-PCC, idarucizumab, aPCC, desmopressin are for life-threatening bleeding).
- Blood from another source (the FRAME gate routed it away: epistaxis, hematemesis) without physiologic
  compromise: no reversal card; the FRAME card says to hold the agent and when reversal would be due.
- Blood from another source, or of an unclear source, WITH physiologic compromise (hypoxia, distress, hypotension,
  shock index): life-threatening bleeding whatever its source (ACC 2020: haemodynamic instability makes a bleed
  major and life-threatening), so the reversal agents are offered as for massive hemoptysis.
"""
from __future__ import annotations

from .model import EngineInputs
from .results import Level, Severity

ACC_2020 = "ACC 2020 ECDP, clinical.md C1"


def reversal_card_due(severity: Severity) -> bool:
    """A reversal card is shown unless the blood is routed to another pathway and nothing is life-threatening."""
    return not (severity.level is Level.ROUTED_AWAY and not severity.triggers)


def reversal_agent_due(severity: Severity) -> bool:
    """A reversal agent (an order) only for life-threatening bleeding: massive hemoptysis, or blood of another or
    unclear source with physiologic compromise."""
    if severity.level is Level.MASSIVE:
        return True
    return severity.level in (Level.ROUTED_AWAY, Level.SOURCE_UNCLEAR) and bool(severity.triggers)


def hold_text(inputs: EngineInputs) -> str:
    """For a card that shows no reversal card: hold each antithrombotic on board, and when reversal becomes due."""
    agents = {}
    for use in inputs.medications:
        agents.setdefault(use.agent.name, []).append(f"`{use.reference}`")
    if not agents:
        return ""
    on = "; ".join(f"{name} ({', '.join(refs)})" for name, refs in agents.items())
    return (f"**Antithrombotic on board**: {on}. Hold it while the source is assessed. A reversal agent is due only "
            "if this bleeding becomes life-threatening, or major bleeding (haemodynamic instability, Hb drop >= 2 "
            f"g/dL, >= 2 units RBC) does not resolve ({ACC_2020}).")
