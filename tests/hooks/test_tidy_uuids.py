"""builder.tidy gives each card and each suggestion its uuid: the card's first, a suggestion's right after its label,
every other member in its order, a uuid already given kept and an empty one replaced, and no uuid given twice."""
from __future__ import annotations

import uuid

from hooks.cards import builder
from hooks.cards.suggestions import suggestion, with_suggestions


def _card(summary: str, *suggestions: dict) -> dict:
    return builder.card(summary, "warning", "detail", builder.source("https://cds.example.org", "t"),
                        **with_suggestions(suggestions))


def _order(label: str, **members) -> dict:
    made = suggestion(label, [{"type": "create", "description": label, "resource": {"resourceType": "X"}}], True)
    made["extension"] = {"hemoptysis-cds.order": label}
    made.update(members)
    return made


def test_each_suggestion_gets_its_uuid_after_its_label_and_keeps_its_members_in_order():
    first, second = _order("one"), _order("two")
    card = _card("a", first, second)
    before = [dict(first), dict(second)]
    [answer] = builder.tidy([card])
    assert answer is card and list(answer)[0] == "uuid"
    for written, given in zip(answer["suggestions"], before, strict=True):
        assert list(written) == ["label", "uuid", "actions", "isRecommended", "extension"]
        assert {key: value for key, value in written.items() if key != "uuid"} == given
        assert uuid.UUID(written["uuid"]).version == 4
    uuids = [answer["uuid"], *(item["uuid"] for item in answer["suggestions"])]
    assert len(set(uuids)) == 3


def test_a_given_uuid_is_kept_in_its_place_and_an_empty_one_replaced():
    kept = _order("kept", uuid="11111111-1111-4111-8111-111111111111")
    emptied = _order("emptied", uuid="")
    [answer] = builder.tidy([_card("b", kept, emptied)])
    first, second = answer["suggestions"]
    assert first["uuid"] == "11111111-1111-4111-8111-111111111111"
    assert list(first) == ["label", "uuid", "actions", "isRecommended", "extension"]
    assert second["uuid"] and uuid.UUID(second["uuid"]).version == 4
    assert list(second) == ["label", "uuid", "actions", "isRecommended", "extension"]


def test_two_cards_holding_one_suggestion_object_give_it_two_uuids():
    """(Rewritten in place, the shared object kept the first card's uuid: one uuid twice in an answer.)"""
    shared = _order("shared")
    answer = builder.tidy([_card("c", shared), _card("d", shared)])
    assert answer[0]["suggestions"][0]["uuid"] != answer[1]["suggestions"][0]["uuid"]
