"""The links a card carries: the engine's documentation, the sibling engines, and the SMART app when one is
configured. Every base URL comes from configuration (service.LinkSettings), never from code."""
from __future__ import annotations

import json

from ..service import LinkSettings
from .builder import ENGINE_ID


def smart_link(links: LinkSettings, topic: str) -> list[dict]:
    """A SMART app link when one is configured; appContext tells the app which card launched it."""
    if not links.smart_app_url:
        return []
    context = {"engine": ENGINE_ID, "topic": topic}
    return [{"label": links.smart_app_label, "url": links.smart_app_url, "type": "smart",
             "appContext": json.dumps(context, separators=(",", ":"))}]


def dossier_link(links: LinkSettings) -> dict:
    return {"label": "Massive hemoptysis engine dossier", "url": f"{links.public_base_url}/docs/engine",
            "type": "absolute"}


def phases_link(links: LinkSettings) -> dict:
    """How the engine decides (its phases, entry points and calculators): documentation, no patient data."""
    return {"label": "How the engine decides: phases and calculators",
            "url": f"{links.public_base_url}/docs/engine#the-12-phases", "type": "absolute"}


def engine_link(links: LinkSettings, engine_id: str, title: str) -> dict:
    """The sibling engine that manages a cause (its id under the configured engine base URL)."""
    return {"label": f"{title} ({engine_id})", "url": f"{links.engine_base_url}/{engine_id}", "type": "absolute"}


def add_links(card: dict, links: list[dict]) -> None:
    """Append links to the card's own (none sent when there are none: CDS Hooks forbids empty arrays)."""
    merged = [*card.get("links", ()), *links]
    if merged:
        card["links"] = merged
