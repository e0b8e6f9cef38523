"""The raw read of a value in a known unit equals the documented conversion (issue 16 work keeps it exact): the
value times the table's factor plus its offset, kept to 4 decimals in the engine's own unit and 2 after a
conversion, -0 read as 0, whatever shortcut the reader takes for whole numbers."""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from cql_equivalents.observation_reading import Candidate, RawReader
from cql_equivalents.tables import tables

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
UNITS = sorted(tables().unit_factors.items())


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(UNITS), st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False,
                                                                                 width=64), st.just(-0.0)))
def test_a_value_in_a_known_unit_is_converted_as_documented(unit_row, value):
    (name, unit), (factor, offset) = unit_row
    spec = tables().observation_inputs[name]
    candidate = Candidate(name, NOW, {"status": "final", "valueQuantity": {"value": value, "code": unit}}, None)
    reading = RawReader(spec, NOW)(candidate)
    expected = round(float(value) * factor + offset, 4 if (factor, offset) == (1.0, 0.0) else 2)
    low, high = spec.plausible
    if low <= expected <= high:
        assert reading.value == expected and repr(reading.value) == repr(expected) and not reading.rejection
    else:
        assert reading.value is None and reading.kind == "implausible"
