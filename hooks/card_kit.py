"""Building blocks shared by every service's cards: the card object, its source, and the Markdown that
lists the values a card used, what was missing and which records were not used."""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime

import orjson

from cql_equivalents.model import EngineInputs, Observed
from cql_equivalents.tables import tables

from .topics import TOPIC_SYSTEM

SUMMARY_LIMIT = 140  # CDS Hooks 2.0: "<140-character summary"; Inferno flags length >= 140
INDICATOR_ORDER = {"critical": 0, "warning": 1, "info": 2}
ENGINE_ID = "pulm.massive-hemoptysis.v1"


def card(summary: str, indicator: str, detail: str, source: dict, **optional) -> dict:
    summary, detail = clinician_words(summary), clinician_words(detail)
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


# Words for developers, not clinicians (issue 13 item 9): the project's reference file, table files, dossier
# phase numbers and verification notes. Table sources keep them for reviewers; a card shows the citation only.
# Each with a cheap guard that any match needs (a literal, or a pattern with a fast first character): most card
# texts hold none of these words, and scanning 5 KB with every pattern cost ~3 ms per answer (bench, 50 resources).
_DEVELOPER_WORDS = [
    (re.compile(r"\s*\(clinical\.md(?:[^()]|\([^()]*\))*\)"), "", "clinical.md"),
    (re.compile(r"(?:[;,]\s*)?(?:(?:figures? )?confirmed )?(?:in )?clinical\.md[^;,()]*(?:\([^)]*\))?"), "", "clinical.md"),
    (re.compile(r"(?:data/)?[a-z_]+\.toml"), "", ".toml"),
    (re.compile(r"seed 004(?:,)?(?: (?:pivot \d|phases? \d+(?:[-–]\d+)?(?:(?:, | and )\d+)*|special population [^;,()]+|"
                r"entry point [\w ]+?|severity trigger \w+|surrogate))?"), "engine dossier ", "seed 004"),
    (re.compile(r"seed 000,? ?(?:OIC-205-08-B)?"), "OIC-205-08-B", "seed 000"),
    (re.compile(r"\s*\(figures? not re-verified\)|,\s*figures? not re-verified"), "", "re-verified"),
    (re.compile(r"\bphases? \d+(?:[-–]\d+)?(?: and \d+)?\b"), "", "phase"),
    (re.compile(r"engine dossier\s*/\s*"), "engine dossier ", "engine dossier"),
    (re.compile(r"\(\s*(?:[,;]\s*)+"), "(", None),
    (re.compile(r"(?:\s*[,;])+\s*\)"), ")", re.compile(r"[,;]\s*\)")),
    (re.compile(r"\(\s*\)"), "", None),
    (re.compile(r"\s*\(seed\)"), "", "(seed)"),
    (re.compile(r"(?<![\w*])_\s*_(?![\w*])"), "", re.compile(r"_\s*_")),  # an italic citation left empty
    (re.compile(r" {2,}"), " ", "  "),
    (re.compile(r" ([,.;:)])"), r"\1", None),
]


def _may_match(guard, text: str) -> bool:
    if guard is None:
        return True
    return guard in text if isinstance(guard, str) else guard.search(text) is not None


# a validator's message is for the EHR's integration team: the card names the field only
_VALIDATOR_MESSAGE = re.compile(r"not valid FHIR R4 \((?:([\w.\[\]]+): )?[^)\n]*\)")


def clinician_words(text: str) -> str:
    text = _VALIDATOR_MESSAGE.sub(lambda m: "not a valid FHIR record" + (f" (field {m.group(1)})" if m.group(1) else ""),
                                  text)
    for pattern, replacement, guard in _DEVELOPER_WORDS:
        if _may_match(guard, text):
            text = pattern.sub(replacement, text)
    return text


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


def values_table(inputs: EngineInputs, names: Iterable[str]) -> str:
    """The values a card used, each with its time and record."""
    rows = []
    for name in names:
        observed = inputs.observations.get(name)
        if observed is None:
            continue
        note = f" ({observed.note})" if observed.note else ""
        rows.append(f"| {observed.label} | {observed_text(observed)}{note} | {when(observed.at)} | `{observed.reference}` |")
    return ("Values used:\n\n| Input | Value | Time | Record |\n|---|---|---|---|\n" + "\n".join(rows)) if rows else ""


def missing_line(inputs: EngineInputs, names: Iterable[str]) -> str:
    """What is missing, in one line: 'not on record' only for what was not sent (_missing_parts)."""
    return " ".join(f"{heading}: {labels}." for heading, labels in _missing_parts(inputs, list(names)))


def values_section(inputs: EngineInputs, names: Iterable[str]) -> str:
    names = list(names)
    table = values_table(inputs, names)
    parts = []
    if table:
        parts.append(table.replace("Values used:", "**Values used**", 1))
    parts += [f"**{heading}:** {labels}" for heading, labels in _missing_parts(inputs, names)]
    return "\n\n".join(parts)


def _missing_parts(inputs: EngineInputs, names: list[str]) -> list[tuple[str, str]]:
    """(heading, labels) of the inputs not used. 'Not on record' only when nothing was sent: a value sent but
    rejected, or a prefetch key that could not be read at all, is said so (the record may hold it)."""
    specs = tables().observation_inputs
    names = [name for name in names if name not in inputs.observations]
    unusable = [specs[name].label for name in names if name in inputs.unusable_inputs]
    absent = [specs[name].label for name in names if name not in inputs.unusable_inputs]
    parts = []
    if unusable:
        parts.append(("Sent but not usable (see Records not used; obtain a valid value)", ", ".join(unusable)))
    if absent and inputs.unreadable_keys:
        parts.append((f"Not known: prefetch {', '.join(repr(key) for key in sorted(inputs.unreadable_keys))} could "
                      "not be read, so these may be on record (obtain)", ", ".join(absent)))
    elif absent:
        parts.append(("Missing from the record (obtain)", ", ".join(absent)))
    return parts


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
