"""The words a card shows a clinician: developer words (the project's reference file, table files, dossier phase
numbers, verification notes, validator messages) taken out, and text from the record shown as plain text."""
from __future__ import annotations

import re

# Words for developers, not clinicians (issue 13 item 9): the project's reference file, table files, dossier
# phase numbers and verification notes. Table sources keep them for reviewers; a card shows the citation only.
# Each with a cheap guard that any match in a line needs (a literal, or a pattern with a fast first character): most
# lines hold none of these words, and scanning 5 KB with every pattern cost ~3 ms per answer (bench, 50 resources).
class _Reversed:
    """A guard searched in the reversed text, for a pattern whose one literal is its last character: a regex
    opening with a character class tries every position (~35 us on a 5 KB detail), one opening with a literal
    jumps between its occurrences (~4 us)."""

    def __init__(self, reversed_pattern: str):
        self._pattern = re.compile(reversed_pattern)

    def search(self, text: str) -> bool:
        return self._pattern.search(text[::-1]) is not None


class _AnyOf:
    """A guard for a pattern that matches exactly one of a few two-character strings (fast substring tests)."""

    def __init__(self, *pieces: str):
        self._pieces = pieces

    def search(self, text: str) -> bool:
        return any(piece in text for piece in self._pieces)


class _FromSpacesBefore:
    """For a pattern `\\s*` + a literal (no lookbehind, no anchor): it can only match from the spaces just before
    the literal's first occurrence, so it is run from there (a line's citation is near its end)."""

    def __init__(self, literal: str):
        self.literal = literal

    def start(self, text: str) -> int:
        """Where the pattern is run from (-1: the literal is absent, nothing can match)."""
        found = text.find(self.literal)
        while found > 0 and text[found - 1].isspace():
            found -= 1
        return found


_DEVELOPER_WORDS: list[tuple[re.Pattern, str, str | re.Pattern | _Reversed | _AnyOf | _FromSpacesBefore | None]] = [
    # a pattern that may open with optional words or spaces starts with a lookahead naming its possible first
    # characters: the same matches, but the regex engine stops at once at every other position (~5x faster)
    (re.compile(r"(?=[\s(])\s*\(clinical\.md(?:[^()]|\([^()]*\))*\)"), "", _FromSpacesBefore("(clinical.md")),
    (re.compile(r"(?=[;,fci])(?:[;,]\s*)?(?:(?:figures? )?confirmed )?(?:in )?clinical\.md[^;,()]*(?:\([^)]*\))?"), "",
     "clinical.md"),
    (re.compile(r"(?=[a-z_])(?:data/)?[a-z_]+\.toml"), "", ".toml"),
    (re.compile(r"seed 004(?:,)?(?: (?:pivot \d|phases? \d+(?:[-–]\d+)?(?:(?:, | and )\d+)*|special population [^;,()]+|"
                r"entry point [\w ]+?|severity trigger \w+|surrogate))?"), "engine dossier ", "seed 004"),
    (re.compile(r"seed 000,? ?(?:OIC-205-08-B)?"), "OIC-205-08-B", "seed 000"),
    (re.compile(r"(?=[\s(,])(?:\s*\(figures? not re-verified\)|,\s*figures? not re-verified)"), "", "re-verified"),
    (re.compile(r"\bphases? \d+(?:[-–]\d+)?(?: and \d+)?\b"), "", "phase"),
    (re.compile(r"engine dossier\s*/\s*"), "engine dossier ", "engine dossier"),
    (re.compile(r"\(\s*(?:[,;]\s*)+"), "(", None),
    # guarded by its last character: a "," or ";" before ")" found from the ")" (a literal the engine jumps to)
    (re.compile(r"(?=[\s,;])(?:\s*[,;])+\s*\)"), ")", _Reversed(r"\)\s*[,;]")),
    (re.compile(r"\(\s*\)"), "", None),
    (re.compile(r"(?=[\s(])\s*\(seed\)"), "", _FromSpacesBefore("(seed)")),
    (re.compile(r"(?<![\w*])_\s*_(?![\w*])"), "", re.compile(r"_\s*_")),  # an italic citation left empty
    (re.compile(r" {2,}"), " ", "  "),
    # the space before a punctuation mark dropped (a lookahead keeps the mark: no replacement template to expand)
    (re.compile(r" (?=[,.;:)])"), "", _AnyOf(" ,", " .", " ;", " :", " )")),
]


def _may_match(guard, text: str) -> bool:
    if guard is None:
        return True
    if isinstance(guard, _FromSpacesBefore):
        return guard.literal in text
    return guard in text if isinstance(guard, str) else bool(guard.search(text))


# a validator's message is for the EHR's integration team: the card names the field only
_VALIDATOR_MESSAGE = re.compile(r"not valid FHIR R4 \((?:([\w.\[\]]+): )?[^)\n]*\)")


# What each line seen needs, by the line's str hash (SipHash under the interpreter's per-process random key): no
# change, or its edit, a sequence of spans of the line kept and fixed replacement strings put in (never a word of
# the line itself: no text from a record is kept). A card's ~60 lines, of which ~6 % change (the citation lines),
# are cleaned once per process instead of each call: 16 patterns per changed line cost ~15-35 us. Emptied when full.
Edit = tuple["tuple[int, int] | str", ...]  # spans of the line kept, replacement strings put in
_KNOWN_LINES: dict[int, tuple[int, Edit | None]] = {}  # hash -> (length, edit); None: the line needs no change
_KNOWN_LINES_MAX = 16_384


def clinician_words(text: str) -> str:
    """Every line of `text` with developer words taken out. Line by line: no pattern here may join two lines."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        key = hash(line)
        known = _KNOWN_LINES.get(key)
        if known is not None and known[0] == len(line):
            if known[1] is not None:  # an empty edit is a line taken out whole
                lines[index] = _rebuilt(line, known[1])
            continue
        cleaned, edit = _clinician_line(line)
        lines[index] = cleaned
        if edit is not None:  # None: a validator message (its field name is text of the record's error)
            if len(_KNOWN_LINES) >= _KNOWN_LINES_MAX:
                _KNOWN_LINES.clear()
            _KNOWN_LINES[key] = (len(line), None if cleaned == line else edit)
    return "\n".join(lines)


def _clinician_line(line: str) -> tuple[str, Edit | None]:
    """The line cleaned, and its edit (spans of `line` kept, replacement strings put in)."""
    remembered = True
    if "not valid FHIR R4 (" in line:
        line = _VALIDATOR_MESSAGE.sub(
            lambda m: "not a valid FHIR record" + (f" (field {m.group(1)})" if m.group(1) else ""), line)
        remembered = False
    original, edit = line, [(0, len(line))]
    for pattern, replacement, guard in _DEVELOPER_WORDS:
        if isinstance(guard, _FromSpacesBefore):
            start = guard.start(line)
            if start < 0:
                continue
        elif _may_match(guard, line):
            start = 0
        else:
            continue
        matches = [match.span() for match in pattern.finditer(line, start)]  # the matches sub replaces
        if matches:
            edit = _replaced(edit, matches, replacement)
            line = _rebuilt(original, edit)
    return line, tuple(edit) if remembered else None


def _rebuilt(line: str, edit) -> str:
    return "".join(line[piece[0]:piece[1]] if type(piece) is tuple else piece for piece in edit)


def _replaced(edit: list, matches: list[tuple[int, int]], replacement: str) -> list:
    """`edit` with each match (a span of the text `edit` makes) replaced by `replacement`."""
    made: list = []
    cursor = 0
    for match_start, match_end in matches:
        made += _pieces_between(edit, cursor, match_start)
        if replacement:
            made.append(replacement)
        cursor = match_end
    made += _pieces_between(edit, cursor, None)
    return made


def _pieces_between(edit: list, start: int, end: int | None) -> list:
    """The pieces of `edit` that make the text from `start` to `end` (None: its end)."""
    found, position = [], 0
    for piece in edit:
        length = piece[1] - piece[0] if type(piece) is tuple else len(piece)
        low = max(start, position)
        high = position + length if end is None else min(end, position + length)
        if low < high:
            offset_low, offset_high = low - position, high - position
            found.append((piece[0] + offset_low, piece[0] + offset_high) if type(piece) is tuple
                         else piece[offset_low:offset_high])
        position += length
        if end is not None and position >= end:
            break
    return found


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def plain(text: str) -> str:
    """Text from the record (a drug's display, free text) shown as text: Markdown and HTML characters escaped,
    on one line, so an EHR's string can neither break the card's layout nor inject markup."""
    text = " ".join(str(text).split())
    # most record text holds none of these characters: a search is ~4x cheaper than a substitution by template
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text) if _MARKDOWN_SPECIAL.search(text) else text
