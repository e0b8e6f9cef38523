"""Duplicate member names in a JSON body, found at parse time.

RFC 8259 §4 leaves a body with a repeated name to the reader ("many implementations report the last name/value
pair only"); one reader taking the last `"value"` and another the first would read two different SpO2 values from
one record. Such a record is not read: it is replaced, where it stands, by a marker naming the repeated members,
and the pool reports it (cql_equivalents.fhir_select.UNREADABLE). A repeated name outside any FHIR resource (the
request's own members) makes the request ambiguous: the caller answers 400.

Cost: the common body has no repeats, and proving it costs two byte counts and one re-serialisation of the parsed
data (a few per cent of the parse; see may_have_duplicates). Only a body that fails that check is parsed again,
slowly, to name the repeated members.
"""
from __future__ import annotations

import json
from typing import Any

import orjson

from cql_equivalents.fhir_select import UNREADABLE


class DuplicateMembers(ValueError):
    """Repeated names outside any FHIR resource; the message names them."""


def _members(data: Any) -> int:
    count, stack = 0, [data]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            count += len(item)
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return count


def may_have_duplicates(raw: bytes, data: Any) -> bool:
    """False only when the body certainly has no repeated member name (never a false "no").

    Every member name is followed by one colon, and colons elsewhere are inside strings, which the compact
    re-writing keeps as they are (whitespace between tokens has no colon). So the body holds more colons than
    the re-written data exactly when some member was dropped. A \\u escape could hide a colon in the body that
    the re-written data shows; then members are counted instead (slower, exact on the parsed side).
    """
    in_body = raw.count(b":")
    # a one-byte search first: memchr (~1 us on 36 KB), where the two-byte one takes ~35 us, and most bodies
    # hold no backslash at all
    if b"\\" not in raw or b"\\u" not in raw:
        try:
            return in_body > orjson.dumps(data).count(b":")
        except TypeError:  # nested deeper than orjson writes (254 levels)
            pass
    return in_body > _members(data)


class _Repeated(dict):
    """An object of the slow parse that had repeated names (kept: which ones)."""

    repeated: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    built = dict(pairs)
    if len(built) == len(pairs):
        return built
    seen, repeated = set(), []
    for name, _ in pairs:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    marked = _Repeated(built)
    marked.repeated = tuple(repeated)
    return marked


def _describe(found: list[tuple[str, tuple[str, ...]]]) -> str:
    return "; ".join(f"'{name}' in {where}" for where, names in found for name in names)


def without_duplicates(raw: bytes) -> Any:
    """Parse again, naming repeated members: each FHIR resource holding one (at any depth) is replaced by
    {resourceType, id, UNREADABLE: why}. Raises DuplicateMembers for repeats outside any resource."""
    try:
        data = json.loads(raw, object_pairs_hook=_pairs)
    except RecursionError:
        raise DuplicateMembers("nested too deeply to be read") from None
    outside: list[tuple[str, tuple[str, ...]]] = []
    # (holder, key in holder, value, path, enclosing resource's (holder, key) or None)
    stack: list[tuple[Any, Any, Any, str, Any]] = [(None, None, data, "$", None)]
    marked_resources: dict[int, tuple[Any, Any, dict, list]] = {}
    while stack:
        holder, key, value, path, resource_at = stack.pop()
        if isinstance(value, dict):
            if type(value.get("resourceType")) is str:
                resource_at = (holder, key, value)
            if isinstance(value, _Repeated):
                if resource_at is None:
                    outside.append((path, value.repeated))
                else:
                    entry = marked_resources.setdefault(id(resource_at[2]), (*resource_at, []))
                    entry[3].append((path, value.repeated))
            stack.extend((value, name, item, f"{path}.{name}", resource_at) for name, item in value.items())
        elif isinstance(value, list):
            stack.extend((value, index, item, f"{path}[{index}]", resource_at) for index, item in enumerate(value))
    if outside:
        raise DuplicateMembers("repeated member names (the body is ambiguous): " + _describe(outside))
    for holder, key, resource, found in marked_resources.values():
        stub = {"resourceType": resource["resourceType"], UNREADABLE:
                "repeated JSON member names (" + _describe(found) + "): readers would disagree on its values"}
        if type(resource.get("id")) is str:
            stub["id"] = resource["id"]
        if holder is None:
            data = stub
        else:
            holder[key] = stub
    return _plain(data)


def _plain(data: Any) -> Any:
    """_Repeated objects back to plain dicts (the readers check `type(x) is dict`), without recursion."""
    if isinstance(data, _Repeated):
        data = dict(data)
    stack = [data]
    while stack:
        item = stack.pop()
        members = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, value in list(members):
            if isinstance(value, _Repeated):
                value = item[key] = dict(value)
            if isinstance(value, (dict, list)):
                stack.append(value)
    return data
