"""What every CDS service declares: one object drives both discovery and routing."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cql_equivalents.fhir_select import ResourcePool
from cql_equivalents.formulary import Formulary, default_formulary


@dataclass(frozen=True)
class LinkSettings:
    """Base URLs for the links cards carry; they come from configuration, never from code."""

    public_base_url: str
    engine_base_url: str
    smart_app_url: str = ""
    smart_app_label: str = "Open the hemoptysis SMART app"


@dataclass
class Evaluation:
    """Everything a service needs to answer one call."""

    hook: str
    context: dict[str, Any]
    pool: ResourcePool
    now: datetime
    links: LinkSettings
    # what the site's formulary stocks (HEMOPTYSIS_CDS_FORMULARY_FILE); the default lacks andexanet (clinical.md E)
    formulary: Formulary = field(default_factory=default_formulary)


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    prefetch: dict[str, str]
    evaluate: Callable[[Evaluation], list[dict]]
    extra_discovery: dict[str, Any] = field(default_factory=dict)

    def discovery(self) -> dict[str, Any]:
        entry = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "usageRequirements": self.usage_requirements,
            "prefetch": dict(self.prefetch),
        }
        entry.update(self.extra_discovery)
        return entry
