"""Is a URL under a FHIR server's base? Decided on the URL the server will actually resolve: percent-encoded dots
decoded and dot segments removed (RFC 3986 §5.2.4) first, so `/fhir/../../elsewhere` and `/fhir/%2e%2e/x` cannot
carry the access token outside the base."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_ENCODED_DOT = re.compile(r"%2e", re.IGNORECASE)
# An encoded slash or a backslash is a path separator to some servers and not to others: never followed.
_AMBIGUOUS_SEPARATOR = re.compile(r"%2f|%5c|\\", re.IGNORECASE)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 on an absolute path."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    joined = "/".join(output)
    return joined if joined.startswith("/") else "/" + joined


def url_under_base(url: str, base_url: str) -> str | None:
    """The normalised URL to request when it is on the base's origin and under its path; otherwise None."""
    parts, base = urlsplit(url), urlsplit(base_url.rstrip("/"))
    if (parts.scheme.lower(), parts.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
        return None
    if _AMBIGUOUS_SEPARATOR.search(parts.path):
        return None
    path = remove_dot_segments(_ENCODED_DOT.sub(".", parts.path) or "/")
    base_path = remove_dot_segments(base.path or "/").rstrip("/")
    if not (path == base_path or path.startswith(base_path + "/")):
        return None
    if path == base_path and not parts.query:
        return None  # the base itself is not a FHIR interaction this service makes
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
