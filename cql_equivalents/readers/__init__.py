"""The FHIR resources of one hook call read into the engine's inputs (model.EngineInputs), one reader per
resource family. `map_inputs` is the one entry point; the order matters where a reader reads what an earlier
one found (exposures read the administrations and labs, support reads the findings and vasopressors)."""
from __future__ import annotations

from datetime import datetime

from ..fhir_select import ResourcePool
from ..model import EngineInputs
from .conditions import read_condition_sources, read_conditions, read_patient
from .medications import read_administrations, read_exposures, read_medications
from .observations import read_observations
from .questionnaires import read_questionnaires
from .record import guarded
from .reports import read_table_findings
from .support import read_support
from .vasopressors import read_vasopressors
from .volumes import read_volume_observations


def map_inputs(pool: ResourcePool, now: datetime) -> EngineInputs:
    inputs = EngineInputs(now=now, problems=list(pool.problems), unreadable_keys=dict(pool.unusable_keys),
                          truncated_keys=dict(pool.truncated))
    for reference, why in pool.unreadable:
        inputs.reject(reference, why, kind="unreadable")
    guarded(inputs, "Patient data", lambda: read_patient(pool, inputs))
    guarded(inputs, "Observations", lambda: read_observations(pool, inputs))
    guarded(inputs, "Conditions", lambda: read_conditions(pool, inputs))
    guarded(inputs, "medications", lambda: read_medications(pool, inputs))
    guarded(inputs, "administrations", lambda: read_administrations(pool, inputs))
    guarded(inputs, "exposures", lambda: read_exposures(pool, inputs))
    guarded(inputs, "reports, procedures and results", lambda: read_table_findings(pool, inputs))
    guarded(inputs, "vasopressor records", lambda: read_vasopressors(pool, inputs))
    guarded(inputs, "hemoptysis volumes", lambda: read_volume_observations(pool, inputs))
    guarded(inputs, "intake answers", lambda: read_questionnaires(pool, inputs))
    guarded(inputs, "blood-source conditions", lambda: read_condition_sources(inputs))
    read_support(pool, inputs)
    inputs.rejected = list(dict.fromkeys(inputs.rejected))  # a record read by two selections is named once
    return inputs
