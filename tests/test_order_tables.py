"""The order and override tables hold together: every key an offer or a reversal step names exists, units agree,
every row names its source, and only codes clinical.md marks confirmed are used."""
from __future__ import annotations

from datetime import datetime, timezone

from cql_equivalents.fhir_select import ResourcePool
from cql_equivalents.model import EngineInputs
from cql_equivalents.results import Level, Severity
from cql_equivalents.tables import load, tables
from hooks.cards import builder, offers
from hooks.cards.fhir_orders import order_table
from hooks.service import Evaluation, LinkSettings

# clinical.md A2 ✔ RxNorm ingredients; anything else must be sent as text
CONFIRMED_RXNORM = {"10691", "8308", "3251", "6902"}
UCUM_FOR_STEP_UNIT = {"U": "[iU]", "ug": "ug", "mg": "mg", "g": "g"}


def test_offers_name_existing_orders_and_override_sets():
    table = order_table()
    orders = set(table.services) | set(table.medications)
    for topic, spec in table.offers.items():
        assert set(spec["recommended"]) | set(spec["also"]) <= orders, topic
        assert spec["override"] in table.override_sets, topic
        assert spec["source"], topic
        for row in spec.get("by_population", ()):
            assert set(row["recommended"]) | set(row["also"]) <= orders and row["source"], topic
            assert row["population"] in ({p["key"] for p in load("populations")["population"]}
                                         | {e["context"] for e in load("care_context")["effect"]}), topic
    for kind in ("draft-antithrombotic", "draft-txa", "other"):
        assert table.override_sets[kind]


def test_reversal_steps_name_existing_medication_orders_in_the_same_unit():
    medications = order_table().medications
    named = 0
    for drug_class, spec in tables().reversal_classes.items():
        for step in spec.get("step", ()):
            if "order" not in step:
                continue
            named += 1
            row = medications[step["order"]]
            if "per_kg_unit" in step:
                assert UCUM_FOR_STEP_UNIT[step["per_kg_unit"]] == row["unit"], (drug_class, step["agent"])
    assert named >= 5


def test_every_row_has_a_source_and_only_confirmed_codes():
    orders = load("orders")
    for row in (*orders["service"], *orders["medication"]):
        assert row["source"], row["key"]
        if row.get("rxnorm"):
            assert row["rxnorm"] in CONFIRMED_RXNORM, row["key"]
        else:
            assert row["code_note"], f"{row['key']}: a row without a code says why"
    assert all(row.get("code_note") for row in orders["service"])  # no confirmed procedure code in clinical.md


def _evaluation(smart: str = "") -> Evaluation:
    return Evaluation("patient-view", {"patientId": "p-1"}, ResourcePool(), datetime.now(timezone.utc),
                      LinkSettings("https://cds.example.org", "https://cds.example.org/engines", smart))


def test_a_warning_card_without_an_offer_row_still_gets_override_reasons_and_the_smart_link():
    inputs = EngineInputs(now=datetime.now(timezone.utc))
    severity = Severity(Level.MASSIVE)
    card = builder.card("Special population", "warning", "d", builder.source("https://cds.example.org", "special-population-x"))
    offers.attach(card, "special-population-x", _evaluation("https://apps.example.org/launch"), inputs, severity)
    assert [r["code"] for r in card["overrideReasons"]] == [r["code"] for r in order_table().override_sets["other"]]
    assert [link["type"] for link in card["links"]] == ["smart"]
    info = builder.card("Report", "info", "d", builder.source("https://cds.example.org", "engine-report"))
    offers.attach(info, "engine-report", _evaluation("https://apps.example.org/launch"), inputs, severity)
    assert "overrideReasons" not in info and "links" not in info and "suggestions" not in info


def test_populations_passed_by_the_engine_withhold_bae():
    inputs = EngineInputs(now=datetime.now(timezone.utc))
    card = builder.card("Massive", "critical", "d", builder.source("https://cds.example.org", "massive-hemoptysis-escalation"))
    offers.attach(card, "massive-hemoptysis-escalation", _evaluation(), inputs, Severity(Level.MASSIVE),
                  populations=["pulmonary_artery_source"])
    labels = [s["label"] for s in card["suggestions"]]
    assert "Interventional radiology: bronchial artery embolisation" not in labels and "Transfer to the ICU" in labels
