"""The engine documentation as a plain HTML page, so a card can link to one section (e.g. the phases) by
anchor. It holds documentation only, never patient data: the page is served without authentication."""
from __future__ import annotations

import html
import re

_HEADING = re.compile(r"^(#{1,4}) (.+)$")


def slug(heading: str) -> str:
    """The anchor of a heading: its words before any parenthesis, lower case, joined by hyphens."""
    words = re.sub(r"[^a-z0-9 ]", "", heading.split(" (")[0].lower())
    return "-".join(words.split())


def render(markdown: str, title: str) -> str:
    parts, block = [], []

    def flush() -> None:
        if any(line.strip() for line in block):
            parts.append("<pre>" + html.escape("\n".join(block).strip("\n")) + "</pre>")
        block.clear()

    for line in markdown.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            level, text = len(match.group(1)), match.group(2)
            parts.append(f'<h{level} id="{slug(text)}">{html.escape(text)}</h{level}>')
        else:
            block.append(line)
    flush()
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:60rem;margin:auto}pre{white-space:pre-wrap}</style>"
            "</head><body>" + "\n".join(parts) + "</body></html>")
