"""formulary.stocked builds the plan it returns by copying the instance dict (not dataclasses.replace): every field
must come out as dataclasses.replace would make it, for every stocking of the site's formulary."""
from dataclasses import fields, replace

import pytest

from cql_equivalents import formulary
from cql_equivalents.formulary import Formulary, products, stocked
from cql_equivalents.results import DoseLine, ReversalPlan


def _lines() -> list[DoseLine]:
    made = []
    for key, row in products().items():
        order = row["orders"][0] if row["orders"] else ""
        made.append(DoseLine(agent=row["label"], dose=f"dose of {key}", note="n", source="s", order=order, quantity=1.0))
    made.append(DoseLine(agent="vitamin K", dose="10 mg IV", note="", source="s"))  # names no product
    return made


def _plan() -> ReversalPlan:
    return ReversalPlan(agent="apixaban", drug_class="factor_xa_inhibitor", class_label="Xa", uses=[], lab_label="anti-Xa",
                        lab=None, lab_note="note", steps=_lines(), source="src", urgency=3)


def _old_stocked(plan: ReversalPlan, site: Formulary) -> ReversalPlan:
    """The previous code: the same lines, the plan made by dataclasses.replace."""
    return replace(plan, steps=list(stocked(plan, site).steps))


@pytest.mark.parametrize("stock", ["all", "none", "default", *products()])
def test_stocked_plan_equals_dataclasses_replace(stock):
    keys = {"all": frozenset(products()), "none": frozenset(), "default": formulary.default_formulary().stocked}
    site = Formulary("site", keys.get(stock, frozenset({stock})), "site formulary")
    plan = _plan()
    before = {item.name: getattr(plan, item.name) for item in fields(ReversalPlan)}
    made = stocked(plan, site)
    expected = _old_stocked(plan, site)
    assert type(made) is ReversalPlan and made is not plan and made.steps is not plan.steps
    assert {item.name: getattr(made, item.name) for item in fields(ReversalPlan)} == \
        {item.name: getattr(expected, item.name) for item in fields(ReversalPlan)}
    assert made.__dict__.keys() == expected.__dict__.keys()
    assert {item.name: getattr(plan, item.name) for item in fields(ReversalPlan)} == before  # the plan given unchanged
    made.steps.append(None)
    assert None not in plan.steps


def test_a_plan_of_a_subclass_goes_through_replace():
    class Special(ReversalPlan):
        pass
    plan = Special(**{item.name: getattr(_plan(), item.name) for item in fields(ReversalPlan)})
    assert type(stocked(plan, formulary.default_formulary())) is Special
