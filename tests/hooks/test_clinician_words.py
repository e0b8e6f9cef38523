"""The developer-word clean-up, line by line with a memo of unchanged lines, gives what applying every pattern in
turn to each line gives, on text made of the tables' own strings (where the developer words come from)."""
from __future__ import annotations

import random
import re
import tomllib

from cql_equivalents.tables import DATA_DIR
from hooks.cards import clinician_words as words


# each pattern without the lookahead that only names its possible first characters (a speed-up, not a rule)
_PLAIN_PATTERNS = [(re.compile(re.sub(r"^\(\?=\[[^\]]*\]\)", "", pattern.pattern)), replacement)
                   for pattern, replacement, _guard in words._DEVELOPER_WORDS]


def _reference(text: str) -> str:
    """Every pattern, in order, over each line (no guard, no lookahead, no memo)."""
    def clean(line: str) -> str:
        line = words._VALIDATOR_MESSAGE.sub(
            lambda m: "not a valid FHIR record" + (f" (field {m.group(1)})" if m.group(1) else ""), line)
        for pattern, replacement in _PLAIN_PATTERNS:
            line = pattern.sub(replacement, line)
        return line
    return "\n".join(clean(line) for line in text.split("\n"))


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _table_strings() -> list[str]:
    found = []
    for path in sorted(DATA_DIR.glob("*.toml")):
        with path.open("rb") as handle:
            found += _strings(tomllib.load(handle))
    return found


EDGES = ["(clinical.md D, E)", "x (, y)", "a ( ; ) b", "( )", "_ _", "two  spaces", "word , next", "(seed)",
         "figures not re-verified", ", figure not re-verified", "see data/orders.toml", "seed 004 phase 3",
         "seed 000, OIC-205-08-B", "engine dossier / x", "phases 4-6 and 7", "not valid FHIR R4 (code: missing)",
         "line ending in ,", "figures confirmed in clinical.md D", "confirmed clinical.md x; y", "in clinical.md", ") opening", "\ttab ;\t)", "no words here at 10:15 UTC, SpO2 86 %"]


def test_line_by_line_with_the_memo_equals_every_pattern_in_turn():
    assert sum(plain.pattern != pattern.pattern for (plain, _), (pattern, _, _) in
               zip(_PLAIN_PATTERNS, words._DEVELOPER_WORDS, strict=True)) >= 5  # the lookaheads are checked too
    strings = _table_strings()
    with_words = [s for s in strings if any(words._may_match(guard, s) for _, _, guard in words._DEVELOPER_WORDS
                                            if guard is not None)]
    assert len(with_words) > 100  # the tables do hold developer words: the clean-up has work to do
    rng = random.Random(16)
    texts = []
    for _ in range(400):
        lines = rng.sample(with_words, 3) + rng.sample(strings, 3) + rng.sample(EDGES, 3)
        rng.shuffle(lines)
        joiners = ["", " ", "; ", ", ", " (", ") "]
        texts.append("\n".join(line + rng.choice(joiners) + rng.choice(EDGES) for line in lines))
    words._KNOWN_LINES.clear()
    for _ in range(2):  # the second pass answers every line from the memo
        for text in texts:
            assert words.clinician_words(text) == _reference(text)
    # what is kept is no text of a line: spans of it, and the patterns' own replacement strings
    replacements = {replacement for _, replacement, _ in words._DEVELOPER_WORDS if replacement}
    edits = [edit for _, edit in words._KNOWN_LINES.values() if edit is not None]
    assert len(edits) > 50 and len(words._KNOWN_LINES) - len(edits) > 50  # changed lines and unchanged ones
    assert () in edits  # a line taken out whole (an empty edit) is told apart from an unchanged one
    for edit in edits:
        for piece in edit:
            assert (type(piece) is tuple and all(type(bound) is int for bound in piece)) \
                or any(piece in replacement for replacement in replacements), piece
    # the space-before-punctuation rule, written with a lookahead, drops what the older form r" ([,.;:)])" -> r"\1" did
    older = re.compile(r" ([,.;:)])")
    newer = next(pattern for pattern, _, _ in words._DEVELOPER_WORDS if pattern.pattern.startswith(" (?="))
    assert all(older.sub(r"\1", text) == newer.sub("", text) for text in [*texts, " , ,", "a  ;b", " .)"])
    changed = sum(words.clinician_words(text) != text for text in texts)
    assert changed == len(texts)  # every text had developer words to take out


def test_a_full_memo_is_emptied_and_answers_stay_right(monkeypatch):
    monkeypatch.setattr(words, "_KNOWN_LINES_MAX", 3)
    words._KNOWN_LINES.clear()
    text = "\n".join(["plain line one", "plain line two", "seed 004 phase 3 (clinical.md A)", "plain three",
                      "plain four", "plain five"])
    for _ in range(3):
        assert words.clinician_words(text) == _reference(text)
        assert len(words._KNOWN_LINES) <= 3


def test_a_validator_message_is_cleaned_every_time_and_not_remembered():
    words._KNOWN_LINES.clear()
    line = "Observation/o1: not valid FHIR R4 (valueQuantity.value: Input should be a number) (seed 004 phase 3)"
    for _ in range(2):
        assert words.clinician_words(line) == _reference(line)
        assert "valueQuantity" in words.clinician_words(line) and "Input should" not in words.clinician_words(line)
    assert not words._KNOWN_LINES  # its field name is the record's own text


def test_plain_escapes_exactly_as_the_substitution_alone():
    """plain skips the substitution when no Markdown character is present: the same text as always substituting,
    for text with and without them (every special character, runs of them, spaces and line breaks)."""
    special = re.compile(r"([\\`*_\[\]<>|#~])")
    rng = random.Random(11)
    alphabet = "ab 1\t\n\\`*_[]<>|#~().-"
    texts = ["", "SpO2", "Warfarin Sodium 5 MG Oral Tablet", "a_b", "*x*", "[link](u)", "<b>", "\\", "~~", "#1|2"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(5000)]
    for text in texts:
        assert words.plain(text) == special.sub(r"\\\1", " ".join(text.split())), text
    assert words.plain(86) == "86"


def test_a_summary_is_the_first_variant_that_fits_else_the_last_cut_at_a_word():
    """summary.fit fills the variants one at a time: the same choice as filling them all first."""
    from hooks.cards.summary import fit

    rng = random.Random(5)
    for _ in range(2000):
        variants = ["{a} " + " ".join("w" * rng.randrange(1, 9) for _ in range(rng.randrange(1, 12)))
                    for _ in range(rng.randrange(1, 5))]
        fields = {"a": "x" * rng.randrange(0, 30)}
        limit = rng.randrange(10, 80)
        filled = [variant.format(**fields) for variant in variants]
        expected = next((item for item in filled if len(item) <= limit), filled[-1][:limit].rsplit(" ", 1)[0])
        assert fit(variants, within=limit, **fields) == expected
