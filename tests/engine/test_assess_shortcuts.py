"""The shortcuts the assessment takes for speed say what the long way says: a cue read in a condition's words by
one pattern, HAS-BLED's conditions by one set of the keys on record."""
from __future__ import annotations

import random

import pytest

from cql_equivalents.populations import _cue_pattern
from cql_equivalents.tables import load, tables


@pytest.mark.parametrize("cue", sorted(tables().cues))
def test_a_cue_pattern_finds_exactly_the_texts_holding_one_of_its_words(cue):
    words = tables().cues[cue]["words"]
    rng = random.Random(cue)
    alphabet = "abcdefghijklmnopqrstuvwxyz -()+.*?[]|\\^$0123456789é"
    texts = [word for word in words] + [f"{rng.choice(words)[:-1]}" for _ in range(50)]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    texts += [f"{''.join(rng.choice(alphabet) for _ in range(8))}{rng.choice(words)}{'x' * rng.randint(0, 3)}"
              for _ in range(100)]
    for text in texts:
        assert (_cue_pattern(cue).search(text) is not None) == any(word in text for word in words), text


def test_every_cue_a_population_names_has_words():
    for row in load("populations")["population"]:
        for cue in row.get("cues", ()):
            assert tables().cues[cue]["words"], (row["key"], cue)
