"""The card object and the answer: a card is built without uuids; the answer gives each card and each suggestion
its uuid last, once duplicates are dropped and the cards ordered, so nothing before needs to strip them."""
from __future__ import annotations

from collections.abc import Iterable

import orjson

from .card_ids import random_uuid
from .clinician_words import clinician_words
from .summary import SUMMARY_LIMIT
from .topics import TOPIC_SYSTEM

INDICATOR_ORDER = {"critical": 0, "warning": 1, "info": 2}
ENGINE_ID = "pulm.massive-hemoptysis.v1"


def card(summary: str, indicator: str, detail: str, source: dict, **optional) -> dict:
    summary, detail = clinician_words(summary), clinician_words(detail)
    if len(summary) >= SUMMARY_LIMIT:
        raise ValueError(f"card summary is {len(summary)} characters (limit < {SUMMARY_LIMIT}): {summary}")
    if indicator not in INDICATOR_ORDER:
        raise ValueError(f"unknown indicator {indicator}")
    built = {"summary": summary, "indicator": indicator, "detail": detail, "source": source}
    # CDS Hooks forbids empty arrays / nulls: only non-empty optional members are sent
    built.update({key: value for key, value in optional.items() if value})
    return built


def source(public_base_url: str, topic: str) -> dict:
    return {
        "label": f"hemoptysis-cds ({ENGINE_ID})",
        "url": f"{public_base_url}/docs/engine",
        "topic": {"system": TOPIC_SYSTEM, "code": topic, "display": topic.replace("-", " ")},
    }


def ordered(cards: Iterable[dict]) -> list[dict]:
    """Critical first, then warning, then info; a stable order within each."""
    return sorted(cards, key=lambda item: INDICATOR_ORDER[item["indicator"]])


def _identity(card: dict) -> bytes:
    """What makes two cards say the same thing: the card written with sorted keys (C-level; a recursive tuple cost
    ~10x more per card). A card carries no uuid before the answer; one copied from an issued answer is compared
    without it."""
    return orjson.dumps({key: value for key, value in card.items() if key != "uuid"}, option=orjson.OPT_SORT_KEYS)


def tidy(cards: Iterable[dict]) -> list[dict]:
    """The answer's cards: duplicates dropped (first kept), critical first in a stable order, then each card and
    each of its suggestions given its uuid (the card's uuid first, a suggestion's after its label: the JSON members
    in the order CDS Hooks examples use)."""
    answer = ordered(_without_duplicates(cards))
    for built in answer:
        _put_first(built, {"uuid": built.get("uuid") or random_uuid()})
        suggestions = built.get("suggestions")
        if suggestions:
            built["suggestions"] = [_with_uuid(suggestion) for suggestion in suggestions]
    return answer


def _with_uuid(suggestion: dict) -> dict:
    """The suggestion written anew with its label, then its uuid, first (a dict display: ~0.6 against ~1.4 us for a
    rewrite in place; nothing holds a suggestion of an answer being tidied but its card)."""
    uuid = suggestion.get("uuid") or random_uuid()
    if "uuid" in suggestion:  # copied from an issued answer: its own uuid (or an empty one) must not come back
        suggestion = {key: value for key, value in suggestion.items() if key != "uuid"}
    return {"label": suggestion["label"], "uuid": uuid, **suggestion}


def _without_duplicates(cards: Iterable[dict]) -> list[dict]:
    """The cards, each one that says the same as an earlier one (_identity) dropped. Two such cards share their
    summary, so a card is written out only when an earlier one has its summary: in most answers none is (writing
    out two ~5 KB cards cost ~25 us, bench 50 resources)."""
    kept: list[dict] = []
    by_summary: dict[object, list[list]] = {}  # summary -> [card, its identity or None while not needed]
    for built in cards:
        summary = built.get("summary")
        if type(summary) is not str:  # not a card builder.card made: grouped by its whole content
            summary = _identity(built)
        earlier = by_summary.get(summary)
        if earlier is None:
            by_summary[summary] = [[built, None]]
            kept.append(built)
            continue
        identity = _identity(built)
        for entry in earlier:
            if entry[1] is None:
                entry[1] = _identity(entry[0])
        if all(entry[1] != identity for entry in earlier):
            earlier.append([built, identity])
            kept.append(built)
    return kept


def _put_first(member: dict, first: dict) -> None:
    """Rewrite `member` in place with `first` leading (the same object: callers keep their references)."""
    rest = member.copy()  # C-level copy and pops: ~half the cost of a filtered list of items
    for key in first:
        rest.pop(key, None)
    member.clear()
    member.update(first)
    member.update(rest)
