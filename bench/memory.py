"""Memory per worker under repeated large calls (issue 11 item 7): one gunicorn worker, the same large body posted
`calls` times over loopback; the worker's resident set (VmRSS) and its peak (VmHWM) read from /proc after the
first call and after the last. Levels off = the peak after many calls stays within a small factor of one call's."""
from __future__ import annotations

import http.client
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .load import LOOPBACK, SERVICE_PATH, child_pids, production_server


@dataclass(frozen=True)
class MemoryResult:
    body_bytes: int
    calls: int
    errors: int
    rss_mb_after_first: float
    peak_mb_after_first: float
    rss_mb_after_last: float
    peak_mb_after_last: float
    peak_ratio: float  # peak after the last call / peak after the first
    seconds_per_call: float

    def as_dict(self) -> dict:
        return asdict(self)


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _post(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
    try:
        connection.request("POST", SERVICE_PATH, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def worker_memory(body: bytes, calls: int) -> MemoryResult:
    master: list[int] = []
    with production_server(1, master_pid=master) as port:
        worker = child_pids(master[0])[0]
        errors = 0 if _post(port, body) == 200 else 1
        first = (_status_mb(worker, "VmRSS"), _status_mb(worker, "VmHWM"))
        started = time.perf_counter()
        for _ in range(calls - 1):
            errors += 0 if _post(port, body) == 200 else 1
        elapsed = (time.perf_counter() - started) / max(calls - 1, 1)
        last = (_status_mb(worker, "VmRSS"), _status_mb(worker, "VmHWM"))
    return MemoryResult(len(body), calls, errors, first[0], first[1], last[0], last[1],
                        round(last[1] / first[1], 2) if first[1] else 0.0, round(elapsed, 3))
