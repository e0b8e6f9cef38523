"""Building blocks shared by every service's cards: the card object, its source, and the Markdown that
lists the values a card used, what was missing and which records were not used."""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime

import orjson

from cql_equivalents.inputs import EngineInputs, Observed
from cql_equivalents.tables import tables

from .topics import TOPIC_SYSTEM

SUMMARY_LIMIT = 140  # CDS Hooks 2.0: "<140-character summary"; Inferno flags length >= 140
INDICATOR_ORDER = {"critical": 0, "warning": 1, "info": 2}
ENGINE_ID = "pulm.massive-hemoptysis.v1"


def card(summary: str, indicator: str, detail: str, source: dict, **optional) -> dict:
    if len(summary) >= SUMMARY_LIMIT:
        raise ValueError(f"card summary is {len(summary)} characters (limit < {SUMMARY_LIMIT}): {summary}")
    if indicator not in INDICATOR_ORDER:
        raise ValueError(f"unknown indicator {indicator}")
    built = {"uuid": str(uuid.uuid4()), "summary": summary, "indicator": indicator, "detail": detail,
             "source": source}
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


_UUID_MEMBER = re.compile(rb'"uuid":"[^"]*",?')


def _identity(card: dict) -> bytes:
    """What makes two cards say the same thing: everything but the per-card and per-suggestion uuids. The card
    written with sorted keys, its uuid members cut out (C-level; a recursive tuple cost ~10x more per card)."""
    return _UUID_MEMBER.sub(b"", orjson.dumps(card, option=orjson.OPT_SORT_KEYS))


def tidy(cards: Iterable[dict]) -> list[dict]:
    """The answer's cards: duplicates dropped (first kept), then critical first in a stable order."""
    seen, kept = set(), []
    for card in cards:
        identity = _identity(card)
        if identity not in seen:
            seen.add(identity)
            kept.append(card)
    return ordered(kept)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def plain(text: str) -> str:
    """Text from the record (a drug's display, free text) shown as text: Markdown and HTML characters escaped,
    on one line, so an EHR's string can neither break the card's layout nor inject markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "time not recorded"


def observed_text(observed: Observed) -> str:
    unit = "" if observed.unit in ("{INR}",) else f" {observed.unit.replace('mm[Hg]', 'mmHg')}"
    return f"{observed.value:g}{unit}"


def values_section(inputs: EngineInputs, names: Iterable[str]) -> str:
    rows, missing = [], []
    specs = tables().observation_inputs
    for name in names:
        observed = inputs.observations.get(name)
        if observed is None:
            missing.append(specs[name].label)
            continue
        note = f" ({observed.note})" if observed.note else ""
        rows.append(f"| {observed.label} | {observed_text(observed)}{note} | {when(observed.at)} | `{observed.reference}` |")
    parts = []
    if rows:
        parts.append("**Values used**\n\n| Input | Value | Time | Record |\n|---|---|---|---|\n" + "\n".join(rows))
    parts += _missing_lines(inputs, [name for name in names if name not in inputs.observations])
    return "\n\n".join(parts)


def _missing_lines(inputs: EngineInputs, names: list[str]) -> list[str]:
    """'Not on record' only when nothing was sent: a value sent but rejected, or a prefetch key that could not be
    read at all, is said so (the record may hold it)."""
    specs = tables().observation_inputs
    unusable = [specs[name].label for name in names if name in inputs.unusable_inputs]
    absent = [specs[name].label for name in names if name not in inputs.unusable_inputs]
    lines = []
    if unusable:
        lines.append("**Sent but not usable (see Records not used; obtain a valid value):** " + ", ".join(unusable))
    if absent and inputs.unreadable_keys:
        lines.append(f"**Not known: prefetch {', '.join(repr(key) for key in sorted(inputs.unreadable_keys))} could "
                     "not be read, so these may be on record (obtain):** " + ", ".join(absent))
    elif absent:
        lines.append("**Missing from the record (obtain):** " + ", ".join(absent))
    return lines


REJECTED_LINES = 10


def records_not_used(inputs: EngineInputs) -> str:
    lines = [f"- `{item.reference}`: {item.reason}" for item in inputs.rejected[:REJECTED_LINES]]
    if len(inputs.rejected) > REJECTED_LINES:
        lines.append(f"- and {len(inputs.rejected) - REJECTED_LINES} more")
    lines += rejected_summary(inputs)
    lines += [f"- {problem}" for problem in inputs.problems]
    return "**Records not used**\n\n" + "\n".join(lines) if lines else ""


def rejected_summary(inputs: EngineInputs) -> list[str]:
    """The rejections counted beyond those listed: '- 412 more SpO2 records in an unknown unit'."""
    from cql_equivalents.observation_reading import KIND_TEXT

    specs = tables().observation_inputs
    lines = []
    for (name, kind), count in sorted(inputs.rejected_more.items()):
        label = specs[name].label if name in specs else (name or "")
        noun = "record" if count == 1 else "records"
        lines.append(f"- {count} more {label + ' ' if label else ''}{noun} {KIND_TEXT.get(kind, 'not used')}")
    return lines


def data_not_read(inputs: EngineInputs) -> str:
    """For the cards that do not list every record not used: the searches cut short, the prefetch keys that could
    not be read and the queries that failed at the client (any of them may hide what this card is about)."""
    if not inputs.problems:
        return ""
    return "**Data not read (the record may hold more than this card shows)**\n\n" + "\n".join(
        f"- {problem}" for problem in inputs.problems)


def with_data_not_read(cards: list[dict], inputs: EngineInputs) -> list[dict]:
    """Every card names what could not be read: those without the full list of records not used get the short one."""
    section = data_not_read(inputs)
    if not section:
        return cards
    for built in cards:
        if "**Records not used**" not in built["detail"]:
            built["detail"] = join(built["detail"], section)
    return cards


def join(*sections: str) -> str:
    return "\n\n".join(section for section in sections if section)
