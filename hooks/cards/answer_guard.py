"""One answer never offers an order that one of its own cards advises against.

Each card family declares, as data, the orders (keys of cql_equivalents/data/orders.toml) its text advises
against in this answer: the rows it renders carry them (populations.toml, contraindications.toml,
card_text.toml `advises_against`). The declaration travels on the card as a CDS Hooks extension, and every
order suggestion names its order key the same way, so the EHR, the tests and this guard read one thing.
After all cards of an answer are built, `enforce` removes from EVERY card any suggestion whose order another
(or the same) card advises against. docs/cards.md, "One answer, no contradiction", says how a card family
declares its own.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache

from cql_equivalents.tables import load

log = logging.getLogger("hemoptysis_cds")

ADVISES_AGAINST = "hemoptysis-cds.advises-against"  # card extension: order keys this card's text advises against
ORDER_KEY = "hemoptysis-cds.order"  # suggestion extension: the orders.toml key the suggestion creates
ALL_ORDERS = "*"  # a card whose text rules out every order of the table (e.g. the adult orders for a child)


@cache
def every_order_key() -> frozenset[str]:
    """Every order key of the table (loaded once per process: the set is made once too, not per card)."""
    orders = load("orders")
    return frozenset(row["key"] for row in (*orders["service"], *orders["medication"]))


def declare(card: dict, keys: Iterable[str]) -> dict:
    """Record on the card the orders its text advises against (merged with what it already declares)."""
    wanted = set(keys)
    if ALL_ORDERS in wanted:
        wanted = (wanted - {ALL_ORDERS}) | every_order_key()
    unknown = wanted - every_order_key()
    if unknown:  # a table row naming an order that does not exist is a table error, caught by the tests
        raise ValueError(f"advises against unknown orders: {sorted(unknown)}")
    if not wanted:
        return card
    extension = card.setdefault("extension", {})
    extension[ADVISES_AGAINST] = sorted(set(extension.get(ADVISES_AGAINST, ())) | wanted)
    return card


def declared(card: dict) -> set[str]:
    return set((card.get("extension") or {}).get(ADVISES_AGAINST, ()))


def order_key(suggestion: dict) -> str:
    return str((suggestion.get("extension") or {}).get(ORDER_KEY, ""))


def tag(suggestion: dict | None, key: str) -> dict | None:
    """Name the order a suggestion creates (None passes through: an order that failed validation)."""
    if suggestion is not None:
        suggestion.setdefault("extension", {})[ORDER_KEY] = key
    return suggestion


def advised_against(cards: Iterable[dict]) -> set[str]:
    keys: set[str] = set()
    for card in cards:
        keys |= declared(card)
    return keys


def violations(cards: list[dict]) -> list[tuple[str, str]]:
    """(card topic, order key) for every suggestion that an answer's card advises against."""
    against = advised_against(cards)
    return [(card["source"]["topic"]["code"], order_key(s)) for card in cards for s in card.get("suggestions", ())
            if order_key(s) in against]


def enforce(cards: list[dict]) -> list[dict]:
    """Remove every suggestion the answer advises against; a card left with none loses selectionBehavior."""
    against = advised_against(cards)
    if not against:
        return cards
    for card in cards:
        suggestions = card.get("suggestions")
        if not suggestions:
            continue
        kept = [s for s in suggestions if order_key(s) not in against]
        for dropped in (s for s in suggestions if order_key(s) in against):
            # card topic and order key only: no patient data in the log
            log.info("order %s withdrawn from card %s: another card of the answer advises against it",
                     order_key(dropped), card["source"]["topic"]["code"])
        if kept:
            card["suggestions"] = kept
        else:
            card.pop("suggestions", None)
            card.pop("selectionBehavior", None)
    return cards
