"""A checker for CDS Hooks 2.0 service responses (cds-hooks-spec.md §1 and §6.8), used by the tests.

Returns a list of problems (empty = conformant). Beyond the spec's MUSTs it enforces this project's own rules:
every card and suggestion has a uuid (feedback needs them), uuids are unique in a response, every resource an
action carries is valid FHIR R4 (fhir.resources.R4B), and card details render cleanly as GFM Markdown.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from fhir.resources.R4B import get_fhir_model_class
from markdown_it import MarkdownIt
from pydantic import ValidationError

INDICATORS = {"info", "warning", "critical"}
SELECTION_BEHAVIORS = {"at-most-one", "any"}
ACTION_TYPES = {"create", "update", "delete"}
LINK_TYPES = {"absolute", "smart"}
CARD_KEYS = {"uuid", "summary", "detail", "indicator", "source", "suggestions", "selectionBehavior",
             "overrideReasons", "links", "extension"}
SUGGESTION_KEYS = {"label", "uuid", "isRecommended", "actions", "extension"}
ACTION_KEYS = {"type", "description", "resource", "resourceId", "extension"}
LINK_KEYS = {"label", "url", "type", "appContext", "autolaunchable", "extension"}
RELATIVE_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-\.]{1,64}$")
# text_join off: escaped characters stay apart (text_special), so an escaped \*\* is not taken for broken bold
_MARKDOWN = MarkdownIt("commonmark").enable("table").enable("strikethrough").disable("text_join")


def _absolute_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _empties(value: Any, where: str, problems: list[str]) -> None:
    """CDS Hooks §Use of JSON: no null, "", [] or {} anywhere (the top-level `cards: []` is the exception)."""
    if value is None or value == "" or value == [] or value == {}:
        problems.append(f"{where}: null or empty value is prohibited")
    elif isinstance(value, dict):
        for key, item in value.items():
            _empties(item, f"{where}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _empties(item, f"{where}[{index}]", problems)


def _coding(coding: Any, where: str, problems: list[str], display_required: bool) -> None:
    if not isinstance(coding, dict):
        problems.append(f"{where}: a Coding must be an object")
        return
    for key in ("system", "code") + (("display",) if display_required else ()):
        if not isinstance(coding.get(key), str) or not coding.get(key):
            problems.append(f"{where}.{key}: required string")


def fhir_problems(resource: Any, where: str) -> list[str]:
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return [f"{where}: not a FHIR resource"]
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError):
        return [f"{where}: unknown FHIR resource type {resource['resourceType']}"]
    try:
        model.model_validate(resource)
    except ValidationError as error:
        return [f"{where}: not valid FHIR R4 ({error.errors()[0]})"]
    return []


def markdown_problems(text: str, where: str) -> list[str]:
    """Render as GFM; flag what shows as literal markup to the reader: unbalanced ** or `, table rows
    that did not become a table, raw HTML tags."""
    problems = []
    tokens = _MARKDOWN.parse(text)
    table_rows = sum(1 for token in tokens if token.type == "tr_open")
    pipe_lines = sum(1 for line in text.splitlines() if line.startswith("|") and not re.match(r"^\|[-| :]+\|$", line))
    if pipe_lines != table_rows:
        problems.append(f"{where}: {pipe_lines} table lines but {table_rows} rendered table rows")
    for token in tokens:
        if token.type == "html_block" or (token.children and any(c.type == "html_inline" for c in token.children)):
            problems.append(f"{where}: raw HTML in Markdown")
        if token.type == "inline":
            plain = "".join(child.content for child in token.children or () if child.type == "text")
            if "**" in plain or "`" in plain:
                problems.append(f"{where}: unrendered ** or ` in {plain[:80]!r}")
    return problems


def _action(action: Any, where: str, problems: list[str]) -> None:
    if not isinstance(action, dict):
        problems.append(f"{where}: an action must be an object")
        return
    problems += [f"{where}.{key}: not a CDS Hooks action member" for key in set(action) - ACTION_KEYS]
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        problems.append(f"{where}.type: {kind!r} is not create, update or delete")
    if not isinstance(action.get("description"), str):
        problems.append(f"{where}.description: required string")
    if kind in ("create", "update"):
        if "resource" not in action:
            problems.append(f"{where}.resource: required for {kind}")
        else:
            problems += fhir_problems(action["resource"], f"{where}.resource")
        if kind == "create" and isinstance(action.get("resource"), dict) and "id" in action["resource"]:
            problems.append(f"{where}.resource.id: a create carries a new resource")
    if kind == "delete":
        if not RELATIVE_REFERENCE.match(str(action.get("resourceId", ""))):
            problems.append(f"{where}.resourceId: a delete needs a relative reference Type/id")
        if "resource" in action:
            problems.append(f"{where}.resource: a delete uses resourceId, not resource")


def _suggestions(card: dict, where: str, problems: list[str]) -> None:
    suggestions = card.get("suggestions")
    behavior = card.get("selectionBehavior")
    if suggestions is None:
        if behavior is not None:
            problems.append(f"{where}.selectionBehavior: given without suggestions")
        return
    if not isinstance(suggestions, list):
        problems.append(f"{where}.suggestions: must be an array")
        return
    if behavior not in SELECTION_BEHAVIORS:
        problems.append(f"{where}.selectionBehavior: MUST be at-most-one or any when suggestions are present")
    recommended = 0
    for index, suggestion in enumerate(suggestions):
        here = f"{where}.suggestions[{index}]"
        if not isinstance(suggestion, dict):
            problems.append(f"{here}: must be an object")
            continue
        problems += [f"{here}.{key}: not a CDS Hooks suggestion member" for key in set(suggestion) - SUGGESTION_KEYS]
        if not isinstance(suggestion.get("label"), str):
            problems.append(f"{here}.label: required string")
        if not isinstance(suggestion.get("uuid"), str):
            problems.append(f"{here}.uuid: needed for accepted feedback")
        if "isRecommended" in suggestion:
            if not isinstance(suggestion["isRecommended"], bool):
                problems.append(f"{here}.isRecommended: must be a boolean")
            recommended += suggestion["isRecommended"] is True
        for position, action in enumerate(suggestion.get("actions") or ()):
            _action(action, f"{here}.actions[{position}]", problems)
    if behavior == "at-most-one" and recommended > 1:
        problems.append(f"{where}: several recommended suggestions need selectionBehavior any")


def _links(card: dict, where: str, problems: list[str]) -> None:
    for index, link in enumerate(card.get("links") or ()):
        here = f"{where}.links[{index}]"
        if not isinstance(link, dict):
            problems.append(f"{here}: must be an object")
            continue
        problems += [f"{here}.{key}: not a CDS Hooks link member" for key in set(link) - LINK_KEYS]
        if not isinstance(link.get("label"), str):
            problems.append(f"{here}.label: required string")
        if not _absolute_url(link.get("url")):
            problems.append(f"{here}.url: required absolute URL")
        if link.get("type") not in LINK_TYPES:
            problems.append(f"{here}.type: must be absolute or smart")
        if "appContext" in link and link.get("type") != "smart":
            problems.append(f"{here}.appContext: only valid on smart links")
        if "appContext" in link and not isinstance(link["appContext"], str):
            problems.append(f"{here}.appContext: must be a string")


def card_problems(card: Any, where: str = "card") -> list[str]:
    if not isinstance(card, dict):
        return [f"{where}: a card must be an object"]
    problems = [f"{where}.{key}: not a CDS Hooks card member" for key in set(card) - CARD_KEYS]
    if not isinstance(card.get("uuid"), str):
        problems.append(f"{where}.uuid: needed for feedback")
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        problems.append(f"{where}.summary: required string")
    elif len(summary) >= 140:
        problems.append(f"{where}.summary: {len(summary)} characters, must be < 140")
    if card.get("indicator") not in INDICATORS:
        problems.append(f"{where}.indicator: {card.get('indicator')!r} is not info, warning or critical")
    if "detail" in card:
        if not isinstance(card["detail"], str):
            problems.append(f"{where}.detail: must be a Markdown string")
        else:
            problems += markdown_problems(card["detail"], f"{where}.detail")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("label"), str):
        problems.append(f"{where}.source.label: required string")
    else:
        for key in ("url", "icon"):
            if key in source and not _absolute_url(source[key]):
                problems.append(f"{where}.source.{key}: must be an absolute URL")
        if "topic" in source:
            _coding(source["topic"], f"{where}.source.topic", problems, display_required=False)
    _suggestions(card, where, problems)
    reasons = card.get("overrideReasons")
    if reasons is not None:
        if not isinstance(reasons, list):
            problems.append(f"{where}.overrideReasons: must be an array")
        for index, reason in enumerate(reasons or ()):
            _coding(reason, f"{where}.overrideReasons[{index}]", problems, display_required=True)
    _links(card, where, problems)
    return problems


def response_problems(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        return ["response: must be an object with a cards array"]
    problems = [f"response.{key}: not a CDS Hooks response member" for key in set(body) - {"cards", "systemActions", "extension"}]
    for index, card in enumerate(body["cards"]):
        _empties(card, f"cards[{index}]", problems)
        problems += card_problems(card, f"cards[{index}]")
    if "systemActions" in body:
        if not body["systemActions"]:
            problems.append("response.systemActions: omit it when empty")
        for index, action in enumerate(body.get("systemActions") or ()):
            _action(action, f"systemActions[{index}]", problems)
    uuids = [card.get("uuid") for card in body["cards"] if isinstance(card, dict)]
    uuids += [s.get("uuid") for card in body["cards"] if isinstance(card, dict)
              for s in card.get("suggestions") or () if isinstance(s, dict)]
    if len(uuids) != len(set(uuids)):
        problems.append("response: card and suggestion uuids must be unique")
    return problems
