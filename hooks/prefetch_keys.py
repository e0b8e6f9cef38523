"""How a service copes when one of its prefetch keys cannot be had, declared next to the key's template.

`required`: without these data no card can be trusted (the call is answered 412, naming the key and why).
`optional`: the cards that can be made without them are made, and say which data could not be had (the CDS
Hooks Sandbox, for one, drops keys it cannot fill, and a FHIR server may not support every resource type).

A template is still the plain string discovery publishes (a `str`), so everything that fills or shows templates
reads it as before.
"""
from __future__ import annotations

REQUIRED = "required"
OPTIONAL = "optional"


class PrefetchTemplate(str):
    strategy: str
    without: str  # what the cards cannot take into account without these data (shown on them)

    def __new__(cls, template: str, strategy: str, without: str = "") -> "PrefetchTemplate":
        if strategy not in (REQUIRED, OPTIONAL):
            raise ValueError(f"unknown prefetch strategy {strategy!r}")
        made = super().__new__(cls, template)
        made.strategy = strategy
        made.without = without
        return made


def required(template: str, why: str) -> PrefetchTemplate:
    """`why`: what makes the cards untrustworthy without these data (documentation for the reader)."""
    return PrefetchTemplate(template, REQUIRED, why)


def optional(template: str, without: str) -> PrefetchTemplate:
    return PrefetchTemplate(template, OPTIONAL, without)


def strategy_of(template: str) -> str:
    """A template declared as a plain string is required: the behaviour every key had before strategies."""
    return getattr(template, "strategy", REQUIRED)


def without_text(template: str) -> str:
    return getattr(template, "without", "")
