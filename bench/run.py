"""`hemoptysis-cds bench`: measure, print the table, write the JSON file."""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path


DEFAULT_SIZES = (50, 500, 5000)
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"
# Connection counts tried per chart size; the largest zero-error rate is the answer. Beyond 2x the workers,
# requests only queue in the listen backlog (sync workers), so higher levels show latency, not more rate.
CONNECTION_LEVELS = {50: (1, 2, 4, 8, 16, 32), 500: (2, 4, 8), 5000: (2, 4)}


def default_repetitions(size: int) -> int:
    """Enough requests for a meaningful p99 on small charts, bounded in time on large ones."""
    return max(60, min(1000, 150_000 // max(size, 1)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="chart sizes in resources, comma-separated (default 50,500,5000)")
    parser.add_argument("--repetitions", type=int, default=0, help="requests per size in process (default: by size)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests, 1 s load runs: a smoke run")
    parser.add_argument("--no-load", action="store_true", help="skip the gunicorn throughput runs")
    parser.add_argument("--load-seconds", type=float, default=5.0, help="length of each load run (default 5 s)")
    parser.add_argument("--load-tool", choices=("auto", "wrk", "python"), default="auto",
                        help="wrk if installed (auto), else the bounded Python load generator")
    parser.add_argument("--sqlite-synchronous", default="NORMAL", choices=("NORMAL", "FULL"),
                        help="the mode measured for every size (the other is measured on the two smallest)")
    parser.add_argument("--jwt", action="store_true",
                        help="also measure the verified-JWT path (skipped when server/security/tokens.py is absent)")
    parser.add_argument("--no-shapes", action="store_true",
                        help="skip the chart shapes of issue 16 (bench/shapes.py) and the worker-memory run")
    parser.add_argument("--rss-calls", type=int, default=200,
                        help="calls of the 50,000-entry body for the worker-memory run (0: skip; default 200)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file (default {DEFAULT_OUTPUT})")
    parser.add_argument("--no-write", action="store_true", help="print the table only")


def _machine(workers: int, tool: str) -> dict:
    wrk = shutil.which("wrk")
    version = ""
    if wrk and tool != "python":
        found = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
        version = (found.stdout or found.stderr).splitlines()[0] if (found.stdout or found.stderr) else ""
    return {"cpus": os.cpu_count(), "workers": workers, "python": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "wrk": version}


def run(args: argparse.Namespace) -> dict:
    from . import charts, inprocess, jwt_path, load, report  # the app's imports, only when measuring
    sizes = [int(size) for size in str(args.sizes).split(",") if size.strip()]
    scale = 0.1 if args.quick else 1.0
    seconds = 1.0 if args.quick else args.load_seconds
    workers = os.cpu_count() or 2
    other_mode = "FULL" if args.sqlite_synchronous == "NORMAL" else "NORMAL"
    results: dict = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": _machine(workers, args.load_tool), "sizes": sizes,
                     "sqlite_synchronous": args.sqlite_synchronous, "latency": [], "throughput": []}

    # A throw-away round first: the first seconds of a process measure slower (imports settling, allocator and
    # CPU caches cold), and that would land on whichever size happens to be measured first.
    inprocess.measure(min(sizes), max(5, int(300 * scale)), synchronous=args.sqlite_synchronous)
    for size in sizes:
        repetitions = max(5, int((args.repetitions or default_repetitions(size)) * scale))
        results["latency"].append(inprocess.measure(size, repetitions, synchronous=args.sqlite_synchronous).as_dict())
        print(f"in-process {size} resources: done", file=sys.stderr, flush=True)
    for size in sorted(sizes)[:2]:  # storage durability cost shows on small requests, where it is a large share
        repetitions = max(5, int((args.repetitions or default_repetitions(size)) * scale))
        results["latency"].append(inprocess.measure(size, repetitions, synchronous=other_mode).as_dict())
    # the smallest chart again, a new one for each call: what the per-process memos (validation verdicts, code
    # meanings) cannot remember, as for a patient this worker has not seen
    repetitions = max(5, int((args.repetitions or default_repetitions(min(sizes))) * scale))
    results["latency_new_chart_each_call"] = inprocess.measure(
        min(sizes), repetitions, synchronous=args.sqlite_synchronous, new_chart_each_call=True).as_dict()
    if args.jwt:
        results["jwt"] = jwt_path.measure(min(sizes), repetitions, args.sqlite_synchronous)  # ES384, judged
        results["jwt_rs384"] = jwt_path.measure(min(sizes), repetitions, args.sqlite_synchronous, algorithm="RS384")

    if not args.no_load:
        with load.production_server(workers, args.sqlite_synchronous) as port:
            for size in sizes:
                body = charts.request_body(size)
                load.warm_up(port, body, workers)
                for connections in CONNECTION_LEVELS.get(size, (2, 4)):
                    row = load.run_load(port, body, size, connections, seconds, args.load_tool)
                    results["throughput"].append(row.as_dict())
                    print(f"load {size} resources c={connections}: {row.requests_per_second} req/s, "
                          f"{row.errors} errors", file=sys.stderr, flush=True)
    if not args.no_shapes:
        from . import shape_run
        results["shapes"] = shape_run.run(scale, 1.0 if args.quick else 3.0,
                                          0 if args.no_load else max(2, int(args.rss_calls * scale)), args.load_tool)
    results["throughput_best"] = report.best_throughput(results["throughput"])
    results["targets"] = report.targets(results["latency"], results["throughput_best"], args.sqlite_synchronous)
    results["targets_issue16"] = report.issue16_targets(results)
    return results


def main(args: argparse.Namespace) -> int:
    from . import report

    results = run(args)
    print(report.table(results))
    if results.get("shapes"):
        from . import shape_run
        print("\n" + shape_run.table(results["shapes"]))
    print("\n" + report.issue16_table(results["targets_issue16"]))
    if not args.no_write:
        report.write_json(results, args.output)
        print(f"\nwritten: {args.output}")
    return 0
