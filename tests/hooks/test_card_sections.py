"""Card sections made from tables prepared once per process say what the table row, read each time, says."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

from cql_equivalents.results import Calculation
from hooks.cards.prose import card_text
from hooks.massive_hemoptysis import sections


def _text_by_the_row(calculations: list[Calculation]) -> str:
    rule = card_text()["calculators"]
    least = dict(rule["min_value"])
    shown = [c for c in calculations
             if c.value is not None and c.name not in rule["never"] and c.value >= least.get(c.name, 0)
             and not any(c.interpretation.startswith(word) for word in rule["reassuring"])]
    return ("Scores on record (generic, not hemoptysis-specific):\n\n"
            + "\n".join(f"- {c.name} {c.value:g}: {c.interpretation}" for c in shown)) if shown else ""


def test_calculator_lines_show_what_the_calculators_row_allows():
    rule = card_text()["calculators"]
    assert rule["reassuring"] and rule["never"] and rule["min_value"]  # every part of the row is exercised
    names = ["NEWS2", "shock index", *rule["never"], *(name for name, _ in rule["min_value"])]
    openings = [*rule["reassuring"], "high risk", "", "raised", rule["reassuring"][0].upper()]
    values = [None, 0, 1, 1.5, 2, 3]
    seen = set()
    for name, opening, value in itertools.product(names, openings, values):
        calculations = [Calculation(name, value, interpretation=f"{opening}: words"),
                        Calculation("HAS-BLED", 3, interpretation="high risk")]
        seen.add(bool(sections.calculator_lines(SimpleNamespace(calculations=calculations[:1]))))
        assert sections.calculator_lines(SimpleNamespace(calculations=calculations)) == _text_by_the_row(calculations)
    assert seen == {True, False}  # some shown, some left out
