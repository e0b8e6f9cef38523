"""Which antithrombotic agent a medication concept names: the one matcher for drug codes and drug text.

Order of evidence, strongest first:
1. RxNorm ingredient / precise ingredient and the product codes of antithrombotics.toml;
2. RxNorm product codes (SCD / SBD / GPCK) of the reviewed table rxnorm_products.toml (product -> ingredient);
3. ATC: the agent's own code, then its ATC group;
4. words: CodeableConcept.text, every coding.display, and the coding.code of local code systems (a hospital's
   own drug dictionary puts the drug's name in `code`, e.g. the MIMIC demo's mimic-medication-name system).

A site ConceptMap (the bedside issue's terminology loader) comes first: the order is concept_match's, the one
matcher every table uses, so codes are never matched one way in one place and another way elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from .code_memo import CodeMemo, remembered
from .concept_match import first_word, match_concept
from .fhir_values import codings, concept_text
from .tables import ATC_SYSTEMS, ICD10_SYSTEMS, LOINC, RXNORM, SNOMED, Agent, load, tables

NDC = "http://hl7.org/fhir/sid/ndc"
# Systems whose codes are identifiers, never names: their codes are not read as words.
STANDARD_SYSTEMS = frozenset({RXNORM, SNOMED, LOINC, NDC, *ATC_SYSTEMS, *ICD10_SYSTEMS})


@dataclass(frozen=True)
class Product:
    code: str
    display: str
    tty: str
    agent: Agent
    source: str


@cache
def product_table() -> dict[str, Product]:
    """RxNorm product code -> its ingredient agent (rxnorm_products.toml)."""
    agents = {agent.name: agent for agent in tables().rxnorm_to_agent.values()}
    agents.update({agent.name: agent for _, agent in tables().name_to_agent})
    return {row["code"]: Product(row["code"], row["display"], row["tty"], agents[row["ingredient"]], row["source"])
            for row in load("rxnorm_products")["product"]}


def concept_words(concept: Any) -> str:
    """Everything a person could read as the drug's name: text, displays, and codes of local systems."""
    parts = [concept_text(concept)]
    for coding in codings(concept):
        if isinstance(coding.get("display"), str):
            parts.append(coding["display"])
        code = coding.get("code")
        if isinstance(code, str) and coding.get("system") not in STANDARD_SYSTEMS and not code.isdigit():
            parts.append(code)
    return " ".join(part for part in parts if part).lower()


_AGENTS = CodeMemo("drug concept -> antithrombotic")


def agent_of(concept: Any) -> tuple[Agent, str] | None:
    """The antithrombotic a medication CodeableConcept names, and how it was recognised (for the card).
    Remembered per distinct concept: every call of one patient names the same drugs."""
    return remembered(_AGENTS, concept, _agent_of)


def _agent_of(concept: Any) -> tuple[Agent, str] | None:
    table, products = tables(), product_table()

    def site_agent(name: str) -> Agent | None:  # the site's own drug codes (ConceptMap)
        return next((agent for agent in (*table.rxnorm_to_agent.values(), *table.atc_to_agent.values(),
                                         *(a for _, a in table.name_to_agent)) if agent.name == name), None)

    def by_code(system: Any, code: str) -> tuple[Agent, str] | None:
        if system == RXNORM:
            if code in table.rxnorm_to_agent:
                return table.rxnorm_to_agent[code], f"RxNorm {code}"
            if code in products:
                product = products[code]
                return product.agent, f"RxNorm {code} ({product.tty} '{product.display}' -> {product.agent.name})"
        if system in ATC_SYSTEMS:
            if code in table.atc_to_agent:
                return table.atc_to_agent[code], f"ATC {code}"
            for prefix, group in table.atc_groups:
                if code.startswith(prefix):
                    return group, f"ATC {code}"
        return None

    return match_concept([concept], site_space="drug", site_row=site_agent, code_row=by_code,
                         words=lambda: concept_words(concept),
                         word_row=lambda text: first_word(text, table.name_to_agent,
                                                          lambda word: f"name '{word}' in the drug's text (no recognised code)"))
