"""`hemoptysis-cds bench --shapes`: every chart shape of bench/shapes.py at 50 / 500 / 5,000 resources and the
50,000-entry body, in process (p50 / p99 and the ratio to the bare `json.loads` of the same body, paired call by
call) and over loopback through gunicorn (one connection, p50 / p99), the load average with each row (the CPU is
shared: ratios within one run are what the targets use), and a worker's peak RSS after many calls of the
50,000-entry body against one call's."""
from __future__ import annotations

import os
import sys

from . import inprocess, load, memory, report, shapes


def _repetitions(size: int, scale: float) -> int:
    return max(5, int(min(300, 60_000 // max(size, 1)) * scale))


def _load_average() -> float:
    return round(os.getloadavg()[0], 2)


def run(scale: float, loopback_seconds: float, rss_calls: int, tool: str, sizes: tuple[int, ...] = shapes.SIZES,
        large: bool = True) -> dict:
    cases = shapes.all_cases(sizes, large)
    bodies = {case: shapes.request_body(*case) for case in cases}
    rows = []
    for (shape, size), body in bodies.items():
        load_before = _load_average()
        result = inprocess.measure(size, _repetitions(size, scale), body=body).as_dict()
        rows.append({"shape": shape, **result, "load_average": [load_before, _load_average()]})
        print(f"shapes in-process {shape} {size}: p50 {result['service_ms']['p50']} ms, ratio {result['ratio_p50']}",
              file=sys.stderr, flush=True)
    loopback = []
    workers = os.cpu_count() or 2
    if loopback_seconds > 0:
        with load.production_server(workers) as port:
            for (shape, size), body in bodies.items():
                load.warm_up(port, body, workers, requests_per_worker=2)
                row = load.run_load(port, body, size, 1, loopback_seconds, "python" if tool == "auto" else tool)
                loopback.append({"shape": shape, **row.as_dict(), "load_average": _load_average()})
    rss = memory.worker_memory(bodies[shapes.LARGE], rss_calls).as_dict() if rss_calls and large else None
    return {"in_process": rows, "loopback": loopback, "rss": rss and {**rss, "load_average": _load_average()}}


def table(results: dict) -> str:
    lines = ["Chart shapes, in process (p50 / p99 ms; json = bare json.loads of the same body, paired; load = 1-min "
             "load average before / after the row)",
             f"{'shape':>15} {'resources':>9} {'KiB':>7} {'reqs':>5} {'err':>4} {'cards':>5} {'p50 ms':>8} "
             f"{'p99 ms':>8} {'json p50':>9} {'ratio':>6} {'load':>11} {'tc p50':>7}"]
    for row in results["in_process"]:
        lines.append(f"{row['shape']:>15} {row['size']:>9} {row['body_bytes'] / 1024:>7.0f} {row['requests']:>5} "
                     f"{row['errors']:>4} {row['cards']:>5} {row['service_ms']['p50']:>8.2f} "
                     f"{row['service_ms']['p99']:>8.2f} {row['json_parse_ms']['p50']:>9.2f} {row['ratio_p50']:>6.2f} "
                     f"{row['load_average'][0]:>5.2f}/{row['load_average'][1]:<5.2f} {report.test_client_p50(row)}")
    if results.get("loopback"):
        lines += ["", "Chart shapes over loopback (gunicorn, one connection)",
                  f"{'shape':>15} {'resources':>9} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'load':>6}"]
        for row in results["loopback"]:
            lines.append(f"{row['shape']:>15} {row['size']:>9} {row['requests']:>9} {row['errors']:>7} "
                         f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['load_average']:>6.2f}")
    rss = results.get("rss")
    if rss:
        lines += ["", f"Worker memory, {rss['calls']} calls of the {rss['body_bytes'] / 2**20:.1f} MiB body: peak RSS "
                      f"{rss['peak_mb_after_first']} MB after one call, {rss['peak_mb_after_last']} MB after the last "
                      f"(x{rss['peak_ratio']}); RSS after the last {rss['rss_mb_after_last']} MB; "
                      f"{rss['seconds_per_call']} s per call; errors {rss['errors']}; load {rss['load_average']}"]
    return "\n".join(lines)
