"""The card topics (`source.topic`): one fixed code system, and what each code means, served at GET /topics.

The system is a URN of this service, not a URL of the deployment: a topic code keeps its meaning whatever host
serves it, so an EHR's analytics over `source.topic` agree across environments and replicas.
"""
from __future__ import annotations

from cql_equivalents.tables import load

TOPIC_SYSTEM = "urn:hemoptysis-cds:card-topic"

# code -> (service, what the card is about). Special-population topics come from populations.toml below.
_FIXED = {
    "massive-hemoptysis-escalation": ("massive-hemoptysis", "Massive (life-threatening) hemoptysis: airway, "
                                      "bleeding side down, ICU, bronchial artery embolisation, CT angiography"),
    "hemoptysis-first-line": ("massive-hemoptysis", "Non-massive hemoptysis: first-line medical treatment and "
                              "urgent aetiological work-up"),
    "hemoptysis-severe-by-terrain": ("massive-hemoptysis", "Hemoptysis made severe by the patient's terrain "
                                     "(a modifier), treated as severe from the outset"),
    "hemoptysis-missing-physiology": ("massive-hemoptysis", "Hemoptysis with no vitals on record: massive is not "
                                      "excluded; what to obtain"),
    "hemoptysis-not-adult": ("massive-hemoptysis", "A patient outside the engine's adult scope"),
    "hemoptysis-frame-route-away": ("massive-hemoptysis", "FRAME gate: the blood's source is not the airway; "
                                    "route to that pathway"),
    "hemoptysis-source-unclear": ("massive-hemoptysis", "FRAME gate: the blood's source is unclear; confirm it "
                                  "before escalating"),
    "antithrombotic-reversal": ("massive-hemoptysis", "An anticoagulant or antiplatelet on record: the lab that "
                                "tells its effect, the reversal agent and its computed dose"),
    "haemostatic-plan": ("massive-hemoptysis", "Bleeding with low platelets, low fibrinogen, a raised INR or DIC: "
                         "the targets and the blood components to order"),
    "sibling-engines": ("massive-hemoptysis", "Links to the sibling engines for the underlying cause"),
    "hemoptysis-data-quality": ("massive-hemoptysis", "Stale or unusable data the engine could not rely on"),
    "hemoptysis-record-unreadable": ("massive-hemoptysis", "A bleeding record that cannot be read: hemoptysis "
                                     "neither confirmed nor excluded"),
    "hemoptysis-engine-report": ("massive-hemoptysis", "The engine's entry points, phases and calculators for "
                                 "this patient"),
    "draft-antithrombotic-with-hemoptysis": ("hemoptysis-order-safety", "An anticoagulant or antiplatelet "
                                             "drafted during active hemoptysis"),
    "draft-txa-with-thromboembolism": ("hemoptysis-order-safety", "Tranexamic acid drafted with an active "
                                       "pulmonary embolism"),
}


def population_topic(key: str) -> str:
    return "special-population-" + key.replace("_", "-")


def topics() -> list[dict]:
    """Every topic code a card of this service can carry, with the service and a description."""
    listed = [{"code": code, "display": code.replace("-", " "), "service": service, "description": text}
              for code, (service, text) in _FIXED.items()]
    for row in load("populations")["population"]:
        listed.append({"code": population_topic(row["key"]), "display": population_topic(row["key"]).replace("-", " "),
                       "service": "massive-hemoptysis",
                       "description": f"Special population: {row['label']}. {row['summary']}"})
    return listed
