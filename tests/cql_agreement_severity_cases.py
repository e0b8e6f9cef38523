"""Patients built for the CQL agreement test on severity, the rules that follow it and the phases: what no fixture
holds (a Device named by its statement or order, an oxygen-device flowsheet row, home oxygen as a baseline, the
chronic and cystic-fibrosis cut-offs, an O2 flow, an hourly rate, the worst value of the episode against the newest,
a bound, vasoactive drugs that are and are not compromise, a platelet count that silences a rule, a child). Each is
a real patient-view request run through both engines like a fixture; they are built rules, not answers."""
from __future__ import annotations

from tests import fhir_factory as f
from tests.cql_agreement_cases import _administration, _procedure, _report, _request, _volume

SUBJECT = {"reference": "Patient/pat-1"}
NORMAL_VITALS = (lambda: [f.spo2(96), f.respiratory_rate(16), f.heart_rate(78), f.blood_pressure(128, 76)])


def _device(device_id: str, *, type_text: str = "", name: str = "") -> dict:
    device = {"resourceType": "Device", "id": device_id, "patient": SUBJECT}
    if type_text:
        device["type"] = {"text": type_text}
    if name:
        device["deviceName"] = [{"name": name, "type": "user-friendly-name"}]
    return device


def _device_use(device_id: str, *, status: str = "active", hours_ago: float | None = 1, recorded_days_ago: float = 0,
                period_hours_ago: float | None = None, use_id: str) -> dict:
    statement = {"resourceType": "DeviceUseStatement", "id": use_id, "status": status, "subject": SUBJECT,
                 "device": {"reference": f"Device/{device_id}"}}
    if period_hours_ago is not None:
        statement["timingPeriod"] = {"start": f.ago(hours=period_hours_ago)}
    elif hours_ago is not None:
        statement["timingDateTime"] = f.ago(hours=hours_ago)
    if recorded_days_ago:
        statement["recordedOn"] = f.ago(days=recorded_days_ago)
    return statement


def _device_request(device_id: str, *, hours_ago: float, status: str = "active", request_id: str) -> dict:
    return {"resourceType": "DeviceRequest", "id": request_id, "status": status, "intent": "order", "subject": SUBJECT,
            "codeReference": {"reference": f"Device/{device_id}"}, "authoredOn": f.ago(hours=hours_ago)}


def _device_row(value: dict, *, obs_id: str, minutes_ago: float = 30) -> dict:
    return {"resourceType": "Observation", "id": obs_id, "status": "final",
            "code": {"coding": [{"system": "urn:local:flowsheet", "code": "o2dev", "display": "O2 Delivery Device(s)"}]},
            "subject": SUBJECT, "effectiveDateTime": f.ago(minutes=minutes_ago), **value}


def _bound(observation: dict, comparator: str) -> dict:
    observation["valueQuantity"]["comparator"] = comparator
    return observation


def _vasoactive_request(display: str, code: str, *, do_not_perform: bool = False, request_id: str) -> dict:
    request = f.medication_request(code, display)
    request["id"] = request_id
    if do_not_perform:
        request["doNotPerform"] = True
    return request


def cases() -> list[tuple[str, dict]]:
    child = f.patient_view_request([f.patient(birth_date="2015-03-01"), f.hemoptysis(), f.spo2(84)])
    child["_fixture"] = {"title": "child-spo2-84", "referenceInstant": f.ago(seconds=0)}
    return [
        _request("sev-device-statement-high-flow", [
            f.hemoptysis(), *NORMAL_VITALS(), _device("dev-hf", type_text="High flow nasal cannula"),
            _device_use("dev-hf", use_id="dus-hf"),
        ]),
        _request("sev-device-request-bipap-by-name", [
            f.hemoptysis(), *NORMAL_VITALS(), _device("dev-niv", name="BiPAP machine"),
            _device_request("dev-niv", hours_ago=2, request_id="dr-niv"),
        ]),
        _request("sev-ventilator-started-3-days-ago", [
            f.hemoptysis(), *NORMAL_VITALS(), _device("dev-vent", type_text="Ventilator"),
            _device_use("dev-vent", period_hours_ago=72, use_id="dus-vent"),
        ]),
        _request("sev-device-dated-ahead", [
            f.hemoptysis(), *NORMAL_VITALS(), _device("dev-cpap", type_text="CPAP"),
            _device_use("dev-cpap", hours_ago=-2, use_id="dus-cpap"),
        ]),
        _request("sev-home-oxygen-spo2-86", [
            f.hemoptysis(), f.spo2(86), f.respiratory_rate(18), f.heart_rate(80), f.blood_pressure(130, 80),
            _device("dev-home", type_text="Oxygen concentrator"),
            _device_use("dev-home", hours_ago=None, recorded_days_ago=400, use_id="dus-home"),
        ]),
        _request("sev-chronic-respiratory-failure-spo2-82", [
            f.hemoptysis(), f.condition("J96.11", "Chronic respiratory failure with hypoxia", system=f.ICD10CM),
            f.spo2(82), f.respiratory_rate(20), f.heart_rate(90), f.blood_pressure(130, 80),
        ]),
        _request("sev-flowsheet-row-niv", [
            f.hemoptysis(), *NORMAL_VITALS(), _device_row({"valueString": "Non-invasive ventilation"}, obs_id="fs-niv"),
        ]),
        _request("sev-flowsheet-row-nasal-cannula", [
            f.hemoptysis(), *NORMAL_VITALS(),
            _device_row({"valueCodeableConcept": {"text": "Nasal cannula"}}, obs_id="fs-nc"),
        ]),
        _request("sev-o2-flow-15", [
            f.hemoptysis(), *NORMAL_VITALS(), f.observation("3151-8", 15, "L/min", display="Oxygen flow"),
        ]),
        _request("sev-worst-rr-of-the-episode", [
            f.hemoptysis(), f.spo2(95), f.heart_rate(84), f.blood_pressure(126, 80),
            f.respiratory_rate(7, when=f.ago(hours=9)), f.respiratory_rate(30, when=f.ago(hours=4)),
            f.respiratory_rate(18, when=f.ago(minutes=10)),
        ]),
        _request("sev-hypoxia-before-the-window", [
            f.hemoptysis(), f.respiratory_rate(16), f.heart_rate(80), f.blood_pressure(124, 78),
            f.spo2(84, when=f.ago(hours=7)), f.spo2(96, when=f.ago(minutes=15)),
        ]),
        _request("sev-newest-rr-a-bound", [
            f.hemoptysis(), f.spo2(95), f.heart_rate(84), f.blood_pressure(126, 80),
            f.respiratory_rate(28, when=f.ago(hours=2)), _bound(f.respiratory_rate(30, when=f.ago(minutes=5)), ">"),
        ]),
        _request("sev-phenylephrine-running", [
            f.hemoptysis(), *NORMAL_VITALS(),
            _administration("8163", "phenylephrine", status="in-progress", hours_ago=1, adm_id="ma-phe"),
        ]),
        _request("sev-terlipressin-no-vitals", [
            f.hemoptysis(), _vasoactive_request("terlipressin 1 mg IV", "0", request_id="mr-terli"),
        ]),
        _request("sev-vasopressin-not-to-be-given", [
            f.hemoptysis(), *NORMAL_VITALS(),
            _vasoactive_request("vasopressin", "11149", do_not_perform=True, request_id="mr-vaso"),
        ]),
        _request("sev-cystic-fibrosis-300-ml-per-day", [
            f.hemoptysis(), f.condition("E84.0", "Cystic fibrosis with pulmonary manifestations", system=f.ICD10CM),
            *NORMAL_VITALS(), _volume(300, "mL/d", obs_id="vol-cf"),
        ]),
        _request("sev-rate-150-ml-per-hour", [
            f.hemoptysis(), *NORMAL_VITALS(), _volume(150, "mL/h", obs_id="vol-rate"),
        ]),
        _request("sev-aspirin-platelets-40-non-massive", [
            f.hemoptysis(), *NORMAL_VITALS(), f.medication_statement("1191", "aspirin"),
            f.lab("777-3", 40, "10*3/uL", display="Platelets"),
        ]),
        _request("sev-cavity-on-ct-non-massive", [
            f.hemoptysis(), *NORMAL_VITALS(),
            _report("CT chest", "Thick-walled cavitary lesion of the right upper lobe.", rep_id="rep-cav"),
        ]),
        # a negated cue is no cue ("no cavitation"); an unchanged one still is ("no interval change in the cavity")
        _request("sev-no-cavitation-non-massive", [
            f.hemoptysis(), *NORMAL_VITALS(),
            _report("CT chest", "Bronchiectatic changes of the lower lobes. No cavitation.", rep_id="rep-nocav"),
        ]),
        _request("sev-cavity-unchanged-non-massive", [
            f.hemoptysis(), *NORMAL_VITALS(),
            _report("CT chest", "No interval change in the left upper lobe cavity.", rep_id="rep-samecav"),
        ]),
        ("built:sev-child-spo2-84", child),
        # phases: a cause with the side seen at bronchoscopy and the bed on CT angiography, then embolisation
        _request("phase-bronchiectasis-localised-and-embolised", [
            f.hemoptysis(), f.condition("J47.9", "Bronchiectasis", system=f.ICD10CM), f.spo2(89),
            f.respiratory_rate(24), f.heart_rate(100), f.blood_pressure(118, 70), f.inr(1.1),
            _report("CT angiography chest", "Hypertrophied bronchial artery feeding the right lower lobe; active "
                    "extravasation.", rep_id="rep-cta"),
            _report("Bronchoscopy", "Fresh blood from the right lower lobe segmental bronchus.", hours_ago=2,
                    rep_id="rep-bronch"),
            _procedure("Bronchial artery embolization", days_ago=0.1, proc_id="pr-bae"),
            _procedure("Endotracheal intubation", days_ago=0.2, proc_id="pr-ett"),
        ]),
        _request("phase-quiet-negative-cta", [
            f.hemoptysis(), *NORMAL_VITALS(), _volume(40, "mL", obs_id="vol-small"),
            _report("CT angiography chest", "No active extravasation; no bleeding source identified.", rep_id="rep-neg"),
        ]),
    ]
