"""The clinician-facing prose of the cards, reviewed like the other tables (cql_equivalents/data/card_text.toml)."""
from __future__ import annotations

from functools import cache

from cql_equivalents.tables import load


@cache
def card_text() -> dict:
    return load("card_text")
