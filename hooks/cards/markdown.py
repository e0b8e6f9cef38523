"""The Markdown sections every service's cards share: the values a card used (with time and record), what was
missing, which records were not used and which data could not be read; and how sections are joined."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from cql_equivalents.model import EngineInputs, Observed
from cql_equivalents.observation_reading import KIND_TEXT
from cql_equivalents.tables import tables


# "00".."59": a format spec (`:02d`) cost ~4x a list index, and a card writes ~20 times (bench, 50 resources)
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(60))


def when(moment: datetime | None) -> str:
    if moment is None:
        return "time not recorded"
    if moment.tzinfo is not timezone.utc:  # the engine reads every time as UTC (fhir_values.parse_instant)
        moment = moment.astimezone(timezone.utc)
    year, digits = moment.year, _TWO_DIGITS
    return (f"{year if year >= 1000 else f'{year:04d}'}-{digits[moment.month]}-{digits[moment.day]} "
            f"{digits[moment.hour]}:{digits[moment.minute]} UTC")


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


def numbered(steps: Iterable[str]) -> str:
    """Steps as a Markdown ordered list, from 1."""
    return "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))


def join(*sections: str) -> str:
    return "\n\n".join(section for section in sections if section)


def sources(*items: str) -> str:
    cited = "; ".join(dict.fromkeys(item for item in items if item))
    return f"**Sources**: {cited}." if cited else ""
