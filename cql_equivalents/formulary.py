"""What a site's formulary stocks, and a reversal plan cut to it (data/formulary.toml; README "Formulary").

A reversal line whose products are all out of stock is replaced by a line that says so and names the alternative;
it carries no order. A line naming several products (e.g. "aPCC or 4F-PCC") stays while any of them is stocked.
The site file is TOML: `site = "..."` and `stocked = [product keys]`; a mistake stops the service at start.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from functools import cache, lru_cache
from pathlib import Path

from .results import DoseLine, ReversalPlan
from .tables import load


NOT_STOCKED = ": not stocked at this site"


@dataclass(frozen=True)
class Formulary:
    site: str
    stocked: frozenset[str]
    source: str


@cache
def products() -> dict[str, dict]:
    return {row["key"]: row for row in load("formulary")["product"]}


@cache
def default_formulary() -> Formulary:
    table = load("formulary")
    return Formulary(table["default_site"], frozenset(k for k, row in products().items() if row["default_stocked"]),
                     table["default_source"])


def load_formulary(path: str) -> Formulary:
    """The site's formulary file, checked: every key named must be a product of formulary.toml."""
    if not path:
        return default_formulary()
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"HEMOPTYSIS_CDS_FORMULARY_FILE {path}: cannot be read as TOML ({error})") from error
    stocked = data.get("stocked")
    if not isinstance(stocked, list) or not all(isinstance(key, str) for key in stocked):
        raise ValueError(f"HEMOPTYSIS_CDS_FORMULARY_FILE {path}: 'stocked' must be a list of product keys "
                         f"({', '.join(products())})")
    unknown = sorted(set(stocked) - set(products()))
    if unknown:
        raise ValueError(f"HEMOPTYSIS_CDS_FORMULARY_FILE {path}: unknown product key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(products())}")
    site = data.get("site") if isinstance(data.get("site"), str) else Path(path).name
    return Formulary(site, frozenset(stocked), f"site formulary file {Path(path).name}")


def products_of(line: DoseLine) -> list[str]:
    """The formulary products a reversal line names (by its order key, else by the words of its agent)."""
    return list(_products_named(line.order, line.agent))


@lru_cache(maxsize=512)  # a line's order key and agent come from the reversal tables: a few dozen distinct pairs
def _products_named(order: str, agent: str) -> tuple[str, ...]:
    named = tuple(key for key, row in products().items() if order and order in row["orders"])
    if named:
        return named
    text = re.split(r",\s*(?:only\s+)?if\b", agent.lower())[0]  # "..., if idarucizumab unavailable" names no product
    return tuple(key for key, row in products().items() if any(word in text for word in row["words"]))


def stocked(plan: ReversalPlan, formulary: Formulary) -> ReversalPlan:
    """The plan with every line whose products are all out of stock replaced by 'not stocked: use ...'."""
    steps = []
    for line in plan.steps:
        named = products_of(line)
        if not named or any(key in formulary.stocked for key in named):
            steps.append(line)
            continue
        row = products()[named[0]]
        steps.append(DoseLine(
            agent=f"{row['label']}{NOT_STOCKED}",
            dose=f"not offered ({formulary.site}); instead: {row['alternative']}",
            note="", source=f"{formulary.source}; {row['source']}"))
    return _with_steps(plan, steps)


def _with_steps(plan: ReversalPlan, steps: list[DoseLine]) -> ReversalPlan:
    """`dataclasses.replace(plan, steps=steps)` at a fraction of its cost (~4.5 -> ~0.6 us, once per plan per call):
    ReversalPlan is a plain dataclass (no __post_init__, every field an init field), so its instance dict is its
    constructor's arguments; a subclass, or a class changed to need more, goes through replace."""
    if type(plan) is not ReversalPlan or _PLAN_NEEDS_INIT:
        return replace(plan, steps=steps)
    made = object.__new__(ReversalPlan)
    made.__dict__.update(plan.__dict__)
    made.steps = steps
    return made


# checked once: a copied instance dict equals the constructor's work only for a plain dataclass (not frozen, no
# __post_init__, no field outside __init__, no slots)
_PLAN_NEEDS_INIT = hasattr(ReversalPlan, "__post_init__") or ReversalPlan.__setattr__ is not object.__setattr__ \
    or any(not item.init for item in fields(ReversalPlan)) or hasattr(ReversalPlan, "__slots__")


def unstocked_in(plan: ReversalPlan) -> list[str]:
    """The products `stocked` took out of this plan."""
    labels = {row["label"]: key for key, row in products().items()}
    return [labels[line.agent[: -len(NOT_STOCKED)]] for line in plan.steps
            if line.agent.endswith(NOT_STOCKED) and line.agent[: -len(NOT_STOCKED)] in labels]


def stocked_summary(summary: str, plan: ReversalPlan) -> str:
    """A class summary ("4F-PCC 50 U/kg or andexanet alfa") without the alternatives the site does not stock."""
    gone = unstocked_in(plan)
    if not gone:
        return summary
    words = [word for key in gone for word in products()[key]["words"]]
    parts = [part for part in re.split(r"\s+or\s+", summary) if not any(word in part.lower() for word in words)]
    return " or ".join(parts) if parts else summary
