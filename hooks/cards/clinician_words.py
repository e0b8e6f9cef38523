"""The words a card shows a clinician: developer words (the project's reference file, table files, dossier phase
numbers, verification notes, validator messages) taken out, and text from the record shown as plain text."""
from __future__ import annotations

import re

# Words for developers, not clinicians (issue 13 item 9): the project's reference file, table files, dossier
# phase numbers and verification notes. Table sources keep them for reviewers; a card shows the citation only.
# Each with a cheap guard that any match needs (a literal, or a pattern with a fast first character): most card
# texts hold none of these words, and scanning 5 KB with every pattern cost ~3 ms per answer (bench, 50 resources).
_DEVELOPER_WORDS = [
    (re.compile(r"\s*\(clinical\.md(?:[^()]|\([^()]*\))*\)"), "", "clinical.md"),
    (re.compile(r"(?:[;,]\s*)?(?:(?:figures? )?confirmed )?(?:in )?clinical\.md[^;,()]*(?:\([^)]*\))?"), "", "clinical.md"),
    (re.compile(r"(?:data/)?[a-z_]+\.toml"), "", ".toml"),
    (re.compile(r"seed 004(?:,)?(?: (?:pivot \d|phases? \d+(?:[-–]\d+)?(?:(?:, | and )\d+)*|special population [^;,()]+|"
                r"entry point [\w ]+?|severity trigger \w+|surrogate))?"), "engine dossier ", "seed 004"),
    (re.compile(r"seed 000,? ?(?:OIC-205-08-B)?"), "OIC-205-08-B", "seed 000"),
    (re.compile(r"\s*\(figures? not re-verified\)|,\s*figures? not re-verified"), "", "re-verified"),
    (re.compile(r"\bphases? \d+(?:[-–]\d+)?(?: and \d+)?\b"), "", "phase"),
    (re.compile(r"engine dossier\s*/\s*"), "engine dossier ", "engine dossier"),
    (re.compile(r"\(\s*(?:[,;]\s*)+"), "(", None),
    (re.compile(r"(?:\s*[,;])+\s*\)"), ")", re.compile(r"[,;]\s*\)")),
    (re.compile(r"\(\s*\)"), "", None),
    (re.compile(r"\s*\(seed\)"), "", "(seed)"),
    (re.compile(r"(?<![\w*])_\s*_(?![\w*])"), "", re.compile(r"_\s*_")),  # an italic citation left empty
    (re.compile(r" {2,}"), " ", "  "),
    (re.compile(r" ([,.;:)])"), r"\1", None),
]


def _may_match(guard, text: str) -> bool:
    if guard is None:
        return True
    return guard in text if isinstance(guard, str) else guard.search(text) is not None


# a validator's message is for the EHR's integration team: the card names the field only
_VALIDATOR_MESSAGE = re.compile(r"not valid FHIR R4 \((?:([\w.\[\]]+): )?[^)\n]*\)")


def clinician_words(text: str) -> str:
    text = _VALIDATOR_MESSAGE.sub(lambda m: "not a valid FHIR record" + (f" (field {m.group(1)})" if m.group(1) else ""),
                                  text)
    for pattern, replacement, guard in _DEVELOPER_WORDS:
        if guard is None:
            text = pattern.sub(replacement, text)
        elif _may_match(guard, text):
            text = _in_lines_with(guard, pattern, replacement, text)
    return text


def _in_lines_with(guard, pattern: re.Pattern, replacement: str, text: str) -> str:
    """The substitution made only in the lines the guard finds: a pattern that opens with optional words is tried
    at every position of what it is given (the clinical.md one cost ~1 ms on a 5 KB detail, matching on one line
    of it). No pattern here spans lines."""
    pieces, done = [], 0
    while True:
        found = text.find(guard, done) if isinstance(guard, str) else _search_from(guard, text, done)
        if found < 0:
            pieces.append(text[done:])
            return "".join(pieces)
        start = text.rfind("\n", done, found) + 1 or done
        end = text.find("\n", found)
        end = len(text) if end < 0 else end
        pieces.append(text[done:start])
        pieces.append(pattern.sub(replacement, text[start:end]))
        done = end


def _search_from(guard: re.Pattern, text: str, start: int) -> int:
    match = guard.search(text, start)
    return match.start() if match else -1


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def plain(text: str) -> str:
    """Text from the record (a drug's display, free text) shown as text: Markdown and HTML characters escaped,
    on one line, so an EHR's string can neither break the card's layout nor inject markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
