"""The intake questionnaire (bleeding.toml [questionnaire]): volume answers, the blood source as judged, and the
features that point to one source or another (the FRAME gate's evidence)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from ..fhir_select import ResourcePool
from ..fhir_values import parse_instant, status_of
from ..model import EngineInputs, Rejected, SourceEvidence
from ..tables import tables
from .record import reference_of, skipped_if_malformed, validated
from .volumes import add_volume, volume_unit

# QuestionnaireResponse.status values whose answers are read (a stopped / entered-in-error response is not).
QUESTIONNAIRE_STATUSES_READ = frozenset({"completed", "amended", "in-progress"})



def _answer_value(answer: Mapping[str, Any]) -> Any:
    for key in ("valueQuantity", "valueDecimal", "valueInteger", "valueBoolean", "valueCoding", "valueString"):
        if key in answer:
            return answer[key]
    return None


def _walk_items(items: Any) -> Iterable[Mapping[str, Any]]:
    for item in items or ():
        if isinstance(item, Mapping):
            yield item
            yield from _walk_items(item.get("item"))
            for answer in item.get("answer") or ():
                if isinstance(answer, Mapping):
                    yield from _walk_items(answer.get("item"))


def read_questionnaires(pool: ResourcePool, inputs: EngineInputs) -> None:
    responses = pool.of("QuestionnaireResponse")
    if not responses:
        return  # most calls send no intake answers: the question tables are not even indexed
    bleeding = tables().bleeding
    canonical = bleeding["questionnaire"]["canonical"]
    questions = {row["link_id"]: row for row in bleeding["question"]}
    features = {row["link_id"]: row for row in bleeding["feature"]}
    for raw in responses:
        with skipped_if_malformed(inputs, raw):
            if str(raw.get("questionnaire", "")).split("|")[0] != canonical:
                continue
            if status_of(raw) not in QUESTIONNAIRE_STATUSES_READ:
                continue
            reference = reference_of(raw)
            if not validated(inputs, QuestionnaireResponse, raw, input="questionnaire"):
                continue
            at = parse_instant(raw.get("authored"))
            for item in _walk_items(raw.get("item")):
                link_id = item.get("linkId")
                answers = [a for a in item.get("answer") or () if isinstance(a, Mapping)]
                if not answers:
                    continue
                value = _answer_value(answers[0])
                if link_id in questions and questions[link_id]["kind"] == "volume":
                    ml = value.get("value") if isinstance(value, Mapping) else value
                    unit = (value.get("code") or value.get("unit")) if isinstance(value, Mapping) else None
                    known = volume_unit(unit) if unit else None
                    if unit and known is None:
                        inputs.rejected.append(Rejected(reference, f"answer '{link_id}' unit '{unit}' is not recognised"))
                        continue
                    if known and isinstance(ml, (int, float)):
                        ml = ml * known[1]  # e.g. 0.2 L -> 200 mL; the item names the period
                    if isinstance(ml, (int, float)) and not isinstance(ml, bool):
                        add_volume(inputs, questions[link_id]["volume_kind"], float(ml), at, reference, "intake questionnaire")
                    else:
                        inputs.rejected.append(Rejected(reference, f"answer '{link_id}' is not a number of mL"))
                elif link_id in questions and questions[link_id]["kind"] == "blood_source":
                    code = value.get("code") if isinstance(value, Mapping) else value
                    if code in ("hemoptysis", "hematemesis", "pseudohemoptysis"):
                        inputs.blood_source.append(SourceEvidence(code, f"source judged {code}", reference, True))
                    else:
                        inputs.rejected.append(Rejected(reference, f"answer 'blood-source' = {code!r} is not "
                                                                   "hemoptysis / hematemesis / pseudohemoptysis"))
                elif link_id in features and value is True:
                    feature = features[link_id]
                    inputs.blood_source.append(SourceEvidence(feature["points_to"], feature["label"], reference, False))

