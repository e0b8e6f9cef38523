"""Which cards `massive-hemoptysis` answers with, by the engine's severity level: the engine assesses the patient
once, and every card family is given that assessment. Clinical logic lives in cql_equivalents/."""
from __future__ import annotations

from cql_equivalents import formulary
from cql_equivalents.care_context import care_context, paediatric_airway_emergency
from cql_equivalents.engine import Assessment, assess
from cql_equivalents.results import HaemostaticPlan
from cql_equivalents.readers import map_inputs
from cql_equivalents.results import PatientReversal
from cql_equivalents.patient_reversal import patient_reversal
from cql_equivalents.reversal_due import reversal_card_due
from cql_equivalents.results import Level

from ..cards import answer_guard
from ..cards.builder import tidy
from ..cards.markdown import with_data_not_read
from ..cards.offers import attach
from ..cards.topics import population_topic
from ..service import Evaluation
from . import haemostasis, reversal
from .reversal import mentions
from .bleeding import NOT_ADULT_TOPIC, bleeding_card, bleeding_topic, not_adult_card, not_adult_declares
from .causes import TOPIC as CAUSES_TOPIC, causes_card
from .data_quality import UNREADABLE_TOPIC, data_quality_card, unreadable_bleeding_card
from .frame import frame_card, frame_topic
from .populations import card_populations, population_card


def evaluate(evaluation: Evaluation) -> list[dict]:
    inputs = map_inputs(evaluation.pool, evaluation.now)
    assessment = assess(inputs)
    severity = assessment.severity
    base = evaluation.links.public_base_url
    if severity.level is Level.NO_HEMOPTYSIS:
        # nothing to say unless a bleeding record was sent and could not be read (then it is not excluded)
        unreadable = unreadable_bleeding_card(inputs, base)
        return tidy([attach(unreadable, UNREADABLE_TOPIC, evaluation, inputs, severity)]) if unreadable else []
    if severity.level is Level.NOT_ADULT:
        # adult thresholds, doses and orders must not reach a child: the card declares every order against
        card = not_adult_card(severity, inputs, base, paediatric_airway_emergency(inputs))
        return tidy(with_data_not_read(
            [attach(answer_guard.declare(card, not_adult_declares()), NOT_ADULT_TOPIC, evaluation, inputs, severity)],
            inputs))
    context = care_context(inputs, evaluation.pool)
    populations = [match.key for match in assessment.populations]
    ruled_out = [key for match in assessment.populations for key in match.advises_against]
    rules_against = tuple(assessment.advised_against or ())  # contraindication rules that apply (DIC, HIT...)

    def actionable(card: dict, topic: str, plan: PatientReversal | None = None, against: tuple[str, ...] = (),
                   recommend: bool = True, haemostatic: HaemostaticPlan | None = None) -> dict:
        answer_guard.declare(card, against)
        return attach(card, topic, evaluation, inputs, severity, plan, [*populations, *context.keys],
                      advised_against=rules_against, haemostasis=haemostatic, recommend=recommend)

    # one patient, one reversal plan (issue 14), cut to what the site's formulary stocks
    plans = [formulary.stocked(plan, evaluation.formulary) for plan in assessment.reversal] \
        if reversal_card_due(severity) else []
    patient_plan = patient_reversal(inputs, plans)

    def reversal_and_haemostasis() -> list[dict]:
        made = []
        if patient_plan is not None:
            records = [f"`{use.reference}`" for plan in patient_plan.plans for use in plan.uses]
            made.append(actionable(reversal.reversal_card(patient_plan, severity, inputs, base, assessment),
                                   reversal.TOPIC, patient_plan, against=tuple(_rules_against(assessment, *records))))
        if assessment.haemostasis is not None:
            made.append(actionable(haemostasis.haemostasis_card(assessment.haemostasis, severity, inputs, base, assessment),
                                   haemostasis.TOPIC, against=tuple(assessment.haemostasis.advised_against),
                                   haemostatic=assessment.haemostasis))
        return made

    if severity.level is Level.ROUTED_AWAY:
        # the blood's source is managed elsewhere (GI / ENT): one card, info unless there is compromise. With
        # compromise the bleeding is life-threatening whatever its source: its reversal comes too (ACC 2020)
        answer = [actionable(frame_card(severity, inputs, base), frame_topic(severity))]
        if severity.triggers:
            answer += reversal_and_haemostasis()
        return tidy(with_data_not_read(answer, inputs))
    routed = severity.level is Level.SOURCE_UNCLEAR
    if routed:
        answer = [actionable(frame_card(severity, inputs, base), frame_topic(severity))]
    else:
        # the bleeding card's definitive-control step describes every population matched, so it declares theirs
        answer = [actionable(bleeding_card(severity, inputs, base, assessment, context), bleeding_topic(severity),
                             against=(*ruled_out, *_rules_against(assessment)),
                             recommend=not context.limits_escalation)]
    answer += reversal_and_haemostasis()
    if not routed:
        causes = causes_card(assessment, evaluation)
        if causes:
            answer.append(actionable(causes, CAUSES_TOPIC))
        answer += [actionable(population_card(match, assessment, base), population_topic(match.key),
                              against=(*match.advises_against,))
                   for match in card_populations(assessment)]
    stale = data_quality_card(assessment, base)
    if stale:
        answer.append(stale)
    return tidy(with_data_not_read(answer, inputs))


def _rules_against(assessment: Assessment, *because: str) -> list[str]:
    """Orders ruled out by the contraindication rules a card shows (all of them, or those whose reasons
    mention one of `because`)."""
    return [key for rule in assessment.rules
            if not because or mentions(" ".join(rule.because), because) for key in rule.advises_against]
