"""JSON in and out, in one place (so the parser can be changed without touching the routes)."""
from __future__ import annotations

import json
from typing import Any

from .errors import ApiError


def parse_body(raw: bytes) -> Any:
    if not raw:
        raise ApiError(400, "the request body is empty; a JSON object is expected")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the request body is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
