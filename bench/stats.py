"""Percentiles of timings, in milliseconds."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    p50: float
    p99: float
    mean: float
    min: float
    max: float


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (no interpolation: the value a request really took)."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise(seconds: list[float]) -> Summary:
    if not seconds:
        raise ValueError("no timings to summarise")
    ordered = sorted(value * 1000 for value in seconds)
    return Summary(round(percentile(ordered, 0.50), 3), round(percentile(ordered, 0.99), 3),
                   round(sum(ordered) / len(ordered), 3), round(ordered[0], 3), round(ordered[-1], 3))
