"""The same patient through the Python engine (in-process) and through the CQL on cql-execution.

`python -m bench.cql_engine [--size 50] [--calls 10]` prints one line per path. The CQL path is what a CQL
host does per call (a cql-exec-fhir PatientSource over the Bundle, then the whole MassiveHemoptysisEngine
library); all calls share one Node process, whose start-up (Node, loading the ELM) is reported apart.
Needs `npm ci` and a translation (`node cql/node/translate.mjs`; `make test` does both).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime, timezone

from cql_equivalents.cql_host import bundle_of, run_cases
from cql_equivalents.engine import assess
from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.readers import map_inputs

from . import charts


def python_ms(request: dict, now: datetime, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        assess(map_inputs(pool_from_values(request["prefetch"]), now))
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args(argv)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    request = json.loads(charts.request_body(args.size, 7, now))
    pool = pool_from_values(request["prefetch"])
    resources = sum(len(found) for found in pool.by_type.values())
    python = python_ms(request, now, max(args.calls, 20))
    bundle = bundle_of(pool)
    started = time.perf_counter()
    output = run_cases([(str(i), now.isoformat(), bundle) for i in range(args.calls)])
    wall_ms = (time.perf_counter() - started) * 1000
    per_call = output["milliseconds"] / args.calls
    print(f"{resources}-resource patient, Python engine in-process: median {statistics.median(python):.1f} ms per call "
          f"({len(python)} calls)")
    print(f"{resources}-resource patient, CQL on cql-execution 3.3.2 + cql-exec-fhir 2.2.0: {per_call:.0f} ms per call "
          f"({args.calls} calls in one Node process; Node start-up and ELM load {wall_ms - output['milliseconds']:.0f} ms once)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
