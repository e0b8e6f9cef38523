"""Loads the reviewed clinical tables (data/*.toml) once, at import, into lookup structures."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
# HL7 terminology names ATC http://www.whocc.no/atc; European EHRs also send national copies (clinical.md).
ATC_SYSTEMS = frozenset({
    "http://www.whocc.no/atc",
    "https://kip.rkkp.dk/fhir/CodeSystem/ATC",
    "http://fhir.de/CodeSystem/bfarm/atc",
    "urn:oid:2.16.840.1.113883.6.73",
})


@cache
def load(name: str) -> dict:
    """A table, parsed once (callers only read it)."""
    with (DATA_DIR / f"{name}.toml").open("rb") as handle:
        return tomllib.load(handle)


@dataclass(frozen=True)
class ObservationInput:
    name: str
    label: str
    loinc: tuple[str, ...]
    panel: tuple[str, ...]
    unit: str
    plausible: tuple[float, float]
    unitless_ok: bool
    fresh_hours: float


@dataclass(frozen=True)
class Agent:
    name: str
    drug_class: str
    source: str


@dataclass(frozen=True)
class ConditionConcept:
    key: str
    label: str
    role: str
    sibling: str
    population: str
    frame: str = ""  # frame_gate rows: the blood source it points to


@dataclass
class Tables:
    observation_inputs: dict[str, ObservationInput] = field(default_factory=dict)
    # LOINC code -> input names read from Observation.value / from Observation.component
    loinc_to_input: dict[str, str] = field(default_factory=dict)
    component_loinc_to_input: dict[str, str] = field(default_factory=dict)
    panel_loinc: frozenset[str] = frozenset()
    # (input, unit) -> (factor, offset): engine value = received x factor + offset
    unit_factors: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    rxnorm_to_agent: dict[str, Agent] = field(default_factory=dict)
    atc_to_agent: dict[str, Agent] = field(default_factory=dict)
    atc_groups: list[tuple[str, Agent]] = field(default_factory=list)
    name_to_agent: list[tuple[str, Agent]] = field(default_factory=list)
    reversal_classes: dict[str, dict] = field(default_factory=dict)
    pcc_bands: list[dict] = field(default_factory=list)
    andexanet_regimens: dict[str, dict] = field(default_factory=dict)
    andexanet_thresholds: dict[str, dict] = field(default_factory=dict)
    snomed_to_condition: dict[str, ConditionConcept] = field(default_factory=dict)
    icd10_to_condition: dict[str, ConditionConcept] = field(default_factory=dict)
    icd10_prefix_to_condition: list[tuple[str, ConditionConcept]] = field(default_factory=list)
    words_to_condition: list[tuple[str, ConditionConcept]] = field(default_factory=list)
    conditions_by_key: dict[str, ConditionConcept] = field(default_factory=dict)
    findings: list[dict] = field(default_factory=list)
    finding_loinc: dict[str, dict] = field(default_factory=dict)
    finding_snomed: dict[str, dict] = field(default_factory=dict)
    finding_rxnorm: dict[str, dict] = field(default_factory=dict)
    cues: dict[str, dict] = field(default_factory=dict)
    bleeding: dict = field(default_factory=dict)
    sibling_engines: dict[str, dict] = field(default_factory=dict)
    triggers: list[dict] = field(default_factory=list)


def _build() -> Tables:
    tables = Tables()
    # Pulse-oximetry, respiratory rates, BP and INR have one unit family: a value sent without a unit is read
    # in the engine's unit (and the card says so). Haemoglobin, fibrinogen, platelets and weight do not.
    unitless_ok = {"spo2", "respiratory_rate", "heart_rate", "systolic_bp", "diastolic_bp", "inr", "aptt"}
    panels: set[str] = set()
    for row in load("observations")["input"]:
        spec = ObservationInput(
            name=row["name"], label=row["label"], loinc=tuple(row["loinc"]), panel=tuple(row.get("panel", ())),
            unit=row["unit"], plausible=(float(row["plausible"][0]), float(row["plausible"][1])),
            unitless_ok=row["name"] in unitless_ok, fresh_hours=float(row["fresh_hours"]),
        )
        tables.observation_inputs[spec.name] = spec
        for code in spec.loinc:
            tables.loinc_to_input[code] = spec.name
            if spec.panel:
                tables.component_loinc_to_input[code] = spec.name
        panels.update(spec.panel)
    tables.panel_loinc = frozenset(panels)

    for row in load("units")["conversion"]:
        for unit in row["from"]:
            tables.unit_factors[(row["input"], unit)] = (float(row["factor"]), float(row.get("offset", 0.0)))

    antithrombotics = load("antithrombotics")
    for row in antithrombotics["agent"]:
        agent = Agent(name=row["name"], drug_class=row["class"], source=row["source"])
        for code in (*row.get("rxnorm_ingredient", ()), *row.get("rxnorm_products", ())):
            tables.rxnorm_to_agent[code] = agent
        for code in row.get("atc", ()):
            tables.atc_to_agent[code] = agent
        for word in row.get("names", ()):
            tables.name_to_agent.append((word.lower(), agent))
    for row in antithrombotics["atc_group"]:
        tables.atc_groups.append((row["prefix"], Agent(name=row["label"], drug_class=row["class"], source=row["source"])))

    reversal = load("reversal")
    tables.reversal_classes = {row["class"]: row for row in reversal["class"]}
    tables.pcc_bands = sorted(reversal["pcc_band"], key=lambda band: band["inr_from"])
    tables.andexanet_regimens = {row["regimen"]: row for row in reversal["andexanet_regimen"]}
    tables.andexanet_thresholds = {row["agent"]: row for row in reversal["andexanet_threshold"]}

    for row in load("conditions")["condition"]:
        concept = ConditionConcept(
            key=row["key"], label=row["label"], role=row["role"], sibling=row.get("sibling", ""),
            population=row.get("population", ""), frame=row.get("frame", ""),
        )
        tables.conditions_by_key[concept.key] = concept
        for word in row.get("words", ()):
            tables.words_to_condition.append((word.lower(), concept))
        for code in row.get("snomed", ()):
            tables.snomed_to_condition[code] = concept
        for code in row.get("icd10", ()):
            tables.icd10_to_condition[code] = concept
        for prefix in row.get("icd10_prefix", ()):
            tables.icd10_prefix_to_condition.append((prefix, concept))

    findings = load("findings")
    tables.findings = findings["finding"]
    for row in tables.findings:
        for code in row.get("loinc", ()):
            tables.finding_loinc[code] = row
        for code in row.get("snomed", ()):
            tables.finding_snomed[code] = row
        for code in row.get("rxnorm", ()):
            tables.finding_rxnorm[code] = row
    tables.cues = {row["key"]: row for row in findings["cue"]}
    tables.bleeding = load("bleeding")

    # the longest words first: "pseudohemoptysis" must not be read as "hemoptysis"
    tables.words_to_condition.sort(key=lambda item: len(item[0]), reverse=True)

    tables.sibling_engines = {row["id"]: row for row in load("sibling_engines")["engine"]}
    tables.triggers = load("triggers")["trigger"]
    return tables


@cache
def tables() -> Tables:
    return _build()


@cache
def frame_routes() -> dict[str, str]:
    """Where blood from another source is managed: source -> pathway (bleeding.toml [[route]], seed 004 FRAME)."""
    return {row["points_to"]: row["pathway"] for row in load("bleeding")["route"]}


@cache
def bleeding_beds() -> dict[str, str]:
    """Report cue -> the bleeding bed it names (findings.toml cue rows with a `bed`), in table order."""
    return {row["key"]: row["bed"] for row in load("findings")["cue"] if "bed" in row}
