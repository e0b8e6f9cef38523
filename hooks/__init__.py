"""CDS services: one module per service (its hook, prefetch templates and cards)."""
from dataclasses import replace

from cql_equivalents import terminology

from . import massive_hemoptysis
from .massive_hemoptysis import SERVICE as MASSIVE_HEMOPTYSIS
from .order_safety import SERVICE as ORDER_SAFETY
from .service import CdsService

SERVICES: dict[str, CdsService] = {service.id: service for service in (MASSIVE_HEMOPTYSIS, ORDER_SAFETY)}


def install_site_terminology(site: terminology.SiteTerminology) -> None:
    """Use the site's ConceptMap from now on; the prefetch templates then also ask for its local codes."""
    terminology.install(site)
    SERVICES[MASSIVE_HEMOPTYSIS.id] = replace(SERVICES[MASSIVE_HEMOPTYSIS.id],
                                              prefetch=massive_hemoptysis.prefetch_templates())


__all__ = ["SERVICES", "CdsService", "install_site_terminology"]
