"""The benchmark's answer: a table for people, a JSON file for machines, and the issue's targets checked."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Issue #7 targets.
P50_TARGET_MS = 5.0
P99_TARGET_MS = 20.0
RATIO_TARGET = 3.0


def targets(latency: list[dict], throughput_best: dict[str, dict], synchronous: str) -> dict[str, Any]:
    """Checked on the configuration the service ships with (development auth, the default SQLite mode)."""
    by_size = {row["size"]: row for row in latency
               if row["auth"] == "development" and row["sqlite_synchronous"] == synchronous}
    smallest, largest = (min(by_size), max(by_size)) if by_size else (None, None)
    checks: dict[str, Any] = {}
    if smallest is not None:
        row = by_size[smallest]
        checks["small_request_latency"] = {
            "size": smallest, "p50_ms": row["service_ms"]["p50"], "p99_ms": row["service_ms"]["p99"],
            "target": f"p50 <= {P50_TARGET_MS:g} ms and p99 <= {P99_TARGET_MS:g} ms",
            "met": row["service_ms"]["p50"] <= P50_TARGET_MS and row["service_ms"]["p99"] <= P99_TARGET_MS}
    if largest is not None and largest != smallest:
        row = by_size[largest]
        checks["large_request_vs_json"] = {
            "size": largest, "ratio_p50": row["ratio_p50"], "target": f"<= {RATIO_TARGET:g}x the bare json parse",
            "met": row["ratio_p50"] <= RATIO_TARGET}
    if throughput_best:
        checks["throughput_without_errors"] = {
            size: {"requests_per_second": best["requests_per_second"], "connections": best["connections"],
                   "errors": best["errors"]} for size, best in throughput_best.items()}
        checks["throughput_without_errors"]["met"] = all(best["errors"] == 0 for best in throughput_best.values())
    return checks


def best_throughput(rows: list[dict]) -> dict[str, dict]:
    """Per size, the highest rate reached with zero errors (or, if every level had errors, the highest rate)."""
    best: dict[str, dict] = {}
    for size in sorted({row["size"] for row in rows}):
        runs = [row for row in rows if row["size"] == size]
        clean = [row for row in runs if row["errors"] == 0] or runs
        best[str(size)] = max(clean, key=lambda row: row["requests_per_second"])
    return best


def table(results: dict) -> str:
    lines = ["In-process latency (Flask app through WSGI, same body each time; json = bare json.loads of the body)",
             f"{'resources':>9} {'body KiB':>9} {'auth':>11} {'sqlite':>7} {'reqs':>5} {'err':>4} {'cards':>5} "
             f"{'p50 ms':>8} {'p99 ms':>8} {'json p50':>9} {'ratio':>6} {'cpu%':>5}"]
    for row in results["latency"]:
        lines.append(f"{row['size']:>9} {row['body_bytes'] / 1024:>9.0f} {row['auth']:>11} {row['sqlite_synchronous']:>7} "
                     f"{row['requests']:>5} {row['errors']:>4} {row['cards']:>5} {row['service_ms']['p50']:>8.2f} "
                     f"{row['service_ms']['p99']:>8.2f} {row['json_parse_ms']['p50']:>9.2f} {row['ratio_p50']:>6.2f} "
                     f"{row['cpu_share'] * 100:>5.0f}")
    verified = results.get("jwt")
    if verified and "skipped" in verified:
        lines.append(f"verified-JWT path: skipped ({verified['skipped']})")
    elif verified:
        lines.append(f"{verified['size']:>9} {verified['body_bytes'] / 1024:>9.0f} {verified['auth']:>11} "
                     f"{verified['sqlite_synchronous']:>7} {verified['requests']:>5} {verified['errors']:>4} "
                     f"{verified['cards']:>5} {verified['service_ms']['p50']:>8.2f} {verified['service_ms']['p99']:>8.2f} "
                     f"{verified['json_parse_ms']['p50']:>9.2f} {verified['ratio_p50']:>6.2f} {verified['cpu_share'] * 100:>5.0f}")
    if results.get("throughput"):
        lines += ["", f"Throughput on loopback: gunicorn, {results['machine']['workers']} workers, "
                      f"load by {results['throughput'][0]['tool']} on the same {results['machine']['cpus']} cores",
                  f"{'resources':>9} {'conns':>6} {'seconds':>8} {'requests':>9} {'errors':>7} {'req/s':>8} "
                  f"{'p50 ms':>8} {'p99 ms':>8}"]
        for row in results["throughput"]:
            lines.append(f"{row['size']:>9} {row['connections']:>6} {row['seconds']:>8.1f} {row['requests']:>9} "
                         f"{row['errors']:>7} {row['requests_per_second']:>8.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}")
        lines.append("best without errors: " + ", ".join(
            f"{size} resources {best['requests_per_second']:.0f} req/s (c={best['connections']}, errors {best['errors']})"
            for size, best in results["throughput_best"].items()))
    lines += ["", "Targets (issue #7):"]
    for name, check in results["targets"].items():
        lines.append(f"  {name}: {'met' if check.get('met') else 'NOT met'}  "
                     + json.dumps({k: v for k, v in check.items() if k != 'met'}))
    return "\n".join(lines)


def write_json(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
