"""The number rule of the CQL agreement, written once (cql_agreement.py and cql_agreement_reversal.py use it): a
number is equal when both are null, or when they differ by at most one unit of the last decimal the result is
rounded to (Python rounds half to even, CQL half up: a tie may round to either neighbour)."""
from __future__ import annotations

from typing import Any

OBSERVATION_TOLERANCE = 0.01  # converted values keep 2 decimals (inputs.py): one unit of the last one


def numbers_equal(a: Any, b: Any, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= tolerance + 1e-9
