"""The reviewed RxNorm product -> ingredient table (cql_equivalents/data/rxnorm_products.toml) is sound, and a
product code sent without any display is recognised through it."""
from __future__ import annotations

import re

from cql_equivalents.drug_terms import STANDARD_SYSTEMS, agent_of, concept_words, product_table
from cql_equivalents.tables import RXNORM, load, tables

ROWS = load("rxnorm_products")["product"]
BRANDS = {"warfarin": ("coumadin", "jantoven"), "apixaban": ("eliquis",), "rivaroxaban": ("xarelto",),
          "dabigatran": ("pradaxa",), "edoxaban": ("savaysa",)}


def test_every_row_is_sourced_typed_and_names_a_known_agent():
    known = {agent.name for agent in tables().rxnorm_to_agent.values()} | {a.name for _, a in tables().name_to_agent}
    for row in ROWS:
        assert row["ingredient"] in known, row
        assert row["tty"] in {"SCD", "SBD", "GPCK", "BPCK"}, row
        assert len(row["source"]) > 20, row
        assert re.fullmatch(r"[1-9][0-9]{3,7}", row["code"]), row
        assert row["ingredient"] in row["display"].lower(), row  # the display we saw names the ingredient
        if row["tty"] == "SBD":
            assert any(f"[{brand}]" in row["display"].lower() for brand in BRANDS[row["ingredient"]]), row


def test_no_duplicate_and_no_clash_with_the_ingredient_table():
    codes = [row["code"] for row in ROWS]
    assert len(codes) == len(set(codes))
    ingredient_codes = set(tables().rxnorm_to_agent)
    assert not set(codes) & ingredient_codes, set(codes) & ingredient_codes


def test_the_known_wrong_code_is_dabigatran_not_rivaroxaban():
    """clinical.md A2: some lists wrongly use 1037045 for rivaroxaban; it is dabigatran 150 mg."""
    assert product_table()["1037045"].agent.name == "dabigatran"


def test_a_product_code_without_display_is_recognised():
    agent, how = agent_of({"coding": [{"system": RXNORM, "code": "1037045"}]})
    assert agent.name == "dabigatran" and "SCD" in how and "1037045" in how
    agent, how = agent_of({"coding": [{"system": RXNORM, "code": "1992427"}]})
    assert agent.name == "apixaban" and "GPCK" in how


def test_an_unknown_rxnorm_code_is_not_guessed():
    assert agent_of({"coding": [{"system": RXNORM, "code": "999999"}]}) is None


def test_local_codes_are_read_as_words_standard_codes_are_not():
    mimic = {"coding": [{"system": "http://mimic.mit.edu/fhir/mimic/CodeSystem/mimic-medication-name",
                         "code": "Dabigatran Etexilate"}]}
    assert agent_of(mimic)[0].name == "dabigatran"
    assert "dabigatran etexilate" in concept_words(mimic)
    assert RXNORM in STANDARD_SYSTEMS
    assert concept_words({"coding": [{"system": RXNORM, "code": "heparin"}]}) == ""
