"""A replayable request file: a CDS Hooks request, optionally with a top-level `_fixture` member (title,
referenceInstant, service) that is stripped before sending, its FHIR dates moved by (now - referenceInstant)
(timeshift.py). Read here for replay and for the card gallery alike."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from server.replay import golden
from server.replay.timeshift import parse_reference_instant, shift_dates

FIXTURE_KEY = "_fixture"


class RequestFileError(Exception):
    """A request file that cannot be replayed; the message says why."""


@dataclass
class LoadedRequest:
    body: dict  # what is sent: the request without its _fixture member, dates moved
    fixture: dict


def request_files(paths: Iterable[Path]) -> list[tuple[Path, bool]]:
    """Every request file under the given paths, with whether it was named explicitly. Goldens are left out."""
    found: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            found += [(p, False) for p in sorted(path.rglob("*.json")) if not golden.is_golden(p)]
        else:
            found.append((path, True))
    return found


def load_request(path: Path, now: datetime) -> LoadedRequest:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise RequestFileError("no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestFileError(f"not JSON ({error.__class__.__name__}: {error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("hook"), str) or "context" not in data:
        raise RequestFileError("not a CDS Hooks request (no 'hook' and 'context')")
    fixture = data.pop(FIXTURE_KEY, None) or {}
    if not isinstance(fixture, dict):
        raise RequestFileError(f"'{FIXTURE_KEY}' must be an object")
    reference = fixture.get("referenceInstant")
    if reference is not None:
        try:
            delta = now - parse_reference_instant(str(reference))
        except ValueError as error:
            raise RequestFileError(f"{FIXTURE_KEY}.referenceInstant: {error}") from None
        data = shift_dates(data, delta)
    return LoadedRequest(data, fixture)
