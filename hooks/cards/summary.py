"""A card's summary: the first of its variants (each action first) that fits the limit. The one rule every card
family uses when its fullest summary is too long."""
from __future__ import annotations

from .prose import card_text

SUMMARY_LIMIT = 140  # CDS Hooks 2.0: "<140-character summary"; Inferno flags length >= 140


def fit(variants: list[str], *, within: int | None = None, **fields) -> str:
    """The first variant, filled with `fields`, of at most `within` characters (the house limit of card_text.toml,
    80, unless a card family keeps the CDS Hooks one); if none fits, the last one cut at a word. (`within`, not
    `limit`: `{limit}` is a field of the templates.)"""
    limit = card_text()["summary_limit"] if within is None else within
    if not variants:
        raise ValueError("a summary needs at least one variant")
    filled = ""
    for variant in variants:  # filled one at a time: the first usually fits, and the rest need not be written
        filled = variant.format_map(fields)  # the one mapping, not its items packed again for each variant
        if len(filled) <= limit:
            return filled
    return filled[:limit].rsplit(" ", 1)[0]  # never a word cut in half
