"""Feedback analytics for the CDS committee: per card topic, over a period, how many cards were issued, how many
a clinician accepted or overrode, the override rate (the measure of alert fatigue) and the reasons given.

A card counts as accepted (or overridden) when at least one feedback item about it says so; the override rate is
overridden / (accepted + overridden), the cards a clinician acted on. The period selects cards by when they were
issued, so a card's feedback counts with the card.
"""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from html import escape

from sqlalchemy import select
from sqlalchemy.engine import Engine

from server.storage.schema import card_topic_column, feedback, issued_cards, with_old_topics

DEFAULT_DAYS = 30


class PeriodError(ValueError):
    """A period the page cannot use; the message says which parameter and why."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return (datetime.combine(self.start, time.min, timezone.utc),
                datetime.combine(self.end + timedelta(days=1), time.min, timezone.utc))


def period_from(args, today: date | None = None) -> Period:
    """`from` / `to` as YYYY-MM-DD (both inclusive); default the last 30 days."""
    today = today or datetime.now(timezone.utc).date()
    try:
        end = date.fromisoformat(args["to"]) if args.get("to") else today
        start = date.fromisoformat(args["from"]) if args.get("from") else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError as error:
        raise PeriodError(f"'from' and 'to' are dates written YYYY-MM-DD ({error})") from None
    if start > end:
        raise PeriodError("'from' is after 'to'")
    return Period(start, end)


@dataclass
class TopicRow:
    topic: str
    issued: int = 0
    accepted: int = 0
    overridden: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def override_rate(self) -> float | None:
        acted = self.accepted + self.overridden
        return self.overridden / acted if acted else None


def _reason_text(stored: str | None) -> str:
    if not stored:
        return "no reason given"
    reason = (json.loads(stored) or {}).get("reason") or {}
    return str(reason.get("display") or reason.get("code") or "no reason given")


def topic_rows(engine: Engine, period: Period) -> list[TopicRow]:
    start, end = period.bounds
    cards = (select(issued_cards.c.card_uuid, card_topic_column())
             .select_from(with_old_topics())
             .where(issued_cards.c.issued_at >= start, issued_cards.c.issued_at < end))
    with engine.connect() as connection:
        topic_of = {row.card_uuid: row.topic or "unknown (issued before topics were recorded)"
                    for row in connection.execute(cards)}
        items = connection.execute(select(feedback.c.card_uuid, feedback.c.outcome, feedback.c.override_reason)
                                   .where(feedback.c.card_uuid.in_(topic_of))).all() if topic_of else []
    rows: dict[str, TopicRow] = {}
    for topic in topic_of.values():
        rows.setdefault(topic, TopicRow(topic)).issued += 1
    outcomes: dict[str, set[str]] = {}
    for item in items:
        outcomes.setdefault(item.card_uuid, set()).add(item.outcome)
        if item.outcome == "overridden":
            rows[topic_of[item.card_uuid]].reasons[_reason_text(item.override_reason)] += 1
    for card_uuid, seen in outcomes.items():
        row = rows[topic_of[card_uuid]]
        row.accepted += "accepted" in seen
        row.overridden += "overridden" in seen
    return sorted(rows.values(), key=lambda r: (-r.issued, r.topic))


def _cell(text: str) -> str:
    """Text a client wrote (an override reason's display) cannot become a spreadsheet formula when the committee
    opens the file: a leading = + - @ is quoted (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def as_csv(rows: list[TopicRow], period: Period) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period_start", "period_end", "topic", "issued", "accepted", "overridden", "override_rate",
                     "override_reasons"])
    for row in rows:
        rate = "" if row.override_rate is None else f"{row.override_rate:.3f}"
        reasons = "; ".join(f"{text} ({count})" for text, count in row.reasons.most_common())
        writer.writerow([period.start.isoformat(), period.end.isoformat(), _cell(row.topic), row.issued,
                         row.accepted, row.overridden, rate, _cell(reasons)])
    return out.getvalue()


def bar_chart_svg(rows: list[TopicRow]) -> str:
    """Horizontal bars per topic (issued, accepted, overridden), drawn here as SVG: no script, no library."""
    label_width, bar_width, row_height, bar_height = 300, 420, 54, 14
    series = (("issued", "#8a8f98"), ("accepted", "#2e7d32"), ("overridden", "#c62828"))
    top = max((max(r.issued, r.accepted, r.overridden) for r in rows), default=0) or 1
    height = 40 + row_height * max(len(rows), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{label_width + bar_width + 60}" '
             f'height="{height}" viewBox="0 0 {label_width + bar_width + 60} {height}">',
             '<title>Cards issued, accepted and overridden per topic</title>']
    for i, (name, colour) in enumerate(series):
        parts.append(f'<rect x="{label_width + i * 120}" y="6" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{label_width + i * 120 + 18}" y="17" font-size="12">{name}</text>')
    if not rows:
        parts.append('<text x="10" y="50" font-size="13">No card was issued in this period.</text>')
    for index, row in enumerate(rows):
        y = 32 + index * row_height
        parts.append(f'<text x="{label_width - 8}" y="{y + 24}" font-size="12" text-anchor="end">'
                     f'{escape(row.topic)}</text>')
        for offset, (name, colour) in enumerate(series):
            value = getattr(row, name)
            width = round(bar_width * value / top, 1)
            bar_y = y + offset * (bar_height + 1)
            parts.append(f'<rect class="bar bar-{name}" x="{label_width}" y="{bar_y}" width="{width}" '
                         f'height="{bar_height}" fill="{colour}"><title>{escape(row.topic)}: {value} {name}</title></rect>'
                         f'<text x="{label_width + width + 4}" y="{bar_y + 11}" font-size="11">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)
