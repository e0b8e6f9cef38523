"""What a feedback call may send (issue 11 item 13): a bounded body (read by body_reader.read_capped), bounded nesting, and an outcomeTimestamp that
is a FHIR instant. Feedback is stored, so what is not bounded here grows the database (a 15 MiB extra member did)."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from server.http.errors import ApiError

MAX_FEEDBACK_BYTES = 1024 * 1024  # 500 items (request_models.FeedbackRequest) of ~2 KiB each
MAX_DEPTH = 16  # feedback[i].overrideReason.reason.system is depth 5; extensions add a few levels
# FHIR R4 instant: date, time to the second, optional fraction, and a zone (Z or +hh:mm); 2.24.0.1 of the spec
INSTANT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?"
                     r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Iterative, so a deeply nested body is refused with a 400 instead of exhausting the stack (a 500 before)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise ApiError(400, f"the feedback body is nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def instant(value: str) -> str:
    """A pydantic validator body: the value if it is a FHIR instant that is a real moment, else ValueError."""
    if not INSTANT.match(value):
        raise ValueError("must be a FHIR instant with time zone, e.g. 2026-11-23T10:00:00Z")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("is not a real date and time") from None
    return value
