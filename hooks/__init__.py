"""CDS services: one package per service, named as its id (its declaration, prefetch templates and cards), and
`cards/`, what every service's cards are made of."""
from dataclasses import replace

from cql_equivalents import terminology

from .hemoptysis_order_safety import SERVICE as ORDER_SAFETY
from .massive_hemoptysis import SERVICE as MASSIVE_HEMOPTYSIS
from .massive_hemoptysis.prefetch import prefetch_templates
from .service import CdsService

SERVICES: dict[str, CdsService] = {service.id: service for service in (MASSIVE_HEMOPTYSIS, ORDER_SAFETY)}


def install_site_terminology(site: terminology.SiteTerminology) -> None:
    """Use the site's ConceptMap from now on; the prefetch templates then also ask for its local codes."""
    terminology.install(site)
    SERVICES[MASSIVE_HEMOPTYSIS.id] = replace(SERVICES[MASSIVE_HEMOPTYSIS.id], prefetch=prefetch_templates())


__all__ = ["SERVICES", "CdsService", "install_site_terminology"]
