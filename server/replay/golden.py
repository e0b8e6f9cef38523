"""Golden files: what a replayed answer is compared on.

A golden holds what matters to a clinician and to an integrator, and nothing that changes on every call or with
every wording fix: per card its indicator, summary, source topic code, suggestion labels with their action types
and resource types, and link urls and types. Not the uuids, not the detail Markdown, not the link labels.
The service's own base URL is written as `{base}`, so a golden holds whether replayed in-process or against a
server at another address.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOLDEN_SUFFIX = ".cards.json"
BASE_PLACEHOLDER = "{base}"


def golden_path(request_path: Path) -> Path:
    """fixtures/x/massive-on-warfarin.json -> fixtures/x/massive-on-warfarin.cards.json"""
    return request_path.with_name(request_path.name.removesuffix(".json") + GOLDEN_SUFFIX)


def is_golden(path: Path) -> bool:
    return path.name.endswith(GOLDEN_SUFFIX)


def _with_placeholder(url: Any, base_url: str) -> Any:
    if isinstance(url, str) and base_url and url.startswith(base_url):
        return BASE_PLACEHOLDER + url[len(base_url):]
    return url


def _action(action: dict) -> dict:
    resource = action.get("resource") if isinstance(action.get("resource"), dict) else {}
    resource_type = resource.get("resourceType")
    if resource_type is None and isinstance(action.get("resourceId"), str):
        resource_type = action["resourceId"].split("/")[0]  # a delete names its resource as Type/id
    return _compact({"type": action.get("type"), "resourceType": resource_type})


def _suggestion(suggestion: dict) -> dict:
    return _compact({
        "label": suggestion.get("label"),
        "isRecommended": suggestion.get("isRecommended"),
        "actions": [_action(a) for a in suggestion.get("actions") or () if isinstance(a, dict)],
    })


def _link(link: dict, base_url: str) -> dict:
    return _compact({"url": _with_placeholder(link.get("url"), base_url), "type": link.get("type")})


def _compact(members: dict) -> dict:
    return {key: value for key, value in members.items() if value not in (None, [], {})}


def project_card(card: dict, base_url: str) -> dict:
    topic = ((card.get("source") or {}).get("topic") or {}).get("code")
    return _compact({
        "indicator": card.get("indicator"),
        "summary": card.get("summary"),
        "topic": topic,
        "selectionBehavior": card.get("selectionBehavior"),
        "suggestions": [_suggestion(s) for s in card.get("suggestions") or () if isinstance(s, dict)],
        "links": [_link(link, base_url) for link in card.get("links") or () if isinstance(link, dict)],
    })


def project_answer(status: int, body: Any, base_url: str) -> dict:
    """One service's answer as a golden holds it: the status, and the cards (or the error's issue codes)."""
    if status == 200 and isinstance(body, dict):
        answer: dict[str, Any] = {"status": status,
                                  "cards": [project_card(c, base_url) for c in body.get("cards") or ()]}
        system_actions = [_action(a) for a in body.get("systemActions") or () if isinstance(a, dict)]
        if system_actions:
            answer["systemActions"] = system_actions
        return answer
    issues = body.get("issue") if isinstance(body, dict) else None
    codes = sorted({i.get("code") for i in issues or () if isinstance(i, dict) and i.get("code")})
    return _compact({"status": status, "issueCodes": codes})


def dumps(golden: dict) -> str:
    """Stable, reviewable text: two-space indent, keys in insertion order, one trailing newline."""
    return json.dumps(golden, indent=2, ensure_ascii=False) + "\n"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
