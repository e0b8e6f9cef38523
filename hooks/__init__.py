"""CDS services: one module per service (its hook, prefetch templates and cards)."""
from .massive_hemoptysis import SERVICE as MASSIVE_HEMOPTYSIS
from .order_safety import SERVICE as ORDER_SAFETY
from .service import CdsService

SERVICES: dict[str, CdsService] = {service.id: service for service in (MASSIVE_HEMOPTYSIS, ORDER_SAFETY)}

__all__ = ["SERVICES", "CdsService"]
