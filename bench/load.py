"""Throughput on loopback through the production server: gunicorn (workers = cores) started the way an
operator starts it (`hemoptysis-cds serve`), loaded by wrk, or by a bounded Python load generator when wrk
is not installed. Loopback only; every run is bounded in time and in requests."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from .stats import percentile

SERVICE_PATH = "/cds-services/massive-hemoptysis"
LUA_SCRIPT = Path(__file__).with_name("post.lua")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class LoadResult:
    size: int
    tool: str
    connections: int
    seconds: float
    requests: int
    errors: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _get(port: int, path: str, timeout: float = 2.0) -> int:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent` (a gunicorn master's workers), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{parent}\n" in status:
                found.append(int(entry.name))
    return sorted(found)


@contextmanager
def production_server(workers: int, synchronous: str = "NORMAL", extra_env: dict[str, str] | None = None,
                      start_timeout: float = 60.0, master_pid: list[int] | None = None) -> Iterator[int]:
    """Start `hemoptysis-cds serve` (gunicorn) on a free loopback port; yield the port; stop it (its own pid).
    `master_pid`, when given, receives the gunicorn master's pid (to find its workers)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hemoptysis-bench-server-") as workdir:
        env = {**os.environ,
               "HEMOPTYSIS_CDS_HOST": LOOPBACK, "HEMOPTYSIS_CDS_PORT": str(port),
               "HEMOPTYSIS_CDS_WORKERS": str(workers),
               "HEMOPTYSIS_CDS_DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
               "HEMOPTYSIS_CDS_AUDIT_KEY_FILE": f"{workdir}/audit.key",
               "HEMOPTYSIS_CDS_SQLITE_SYNCHRONOUS": synchronous,
               "HEMOPTYSIS_CDS_AUTH_MODE": "development",
               **(extra_env or {})}
        log_path = Path(workdir) / "server.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"the server exited at start:\n{log_path.read_text()[-2000:]}")
                try:
                    if _get(port, "/healthz") == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer /healthz within {start_timeout:.0f} s")
                time.sleep(0.2)
            if master_pid is not None:
                master_pid.append(server.pid)
            yield port
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, body: bytes, size: int, connections: int, seconds: float) -> LoadResult:
    with tempfile.NamedTemporaryFile(prefix="hemoptysis-bench-body-", suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                   "-s", str(LUA_SCRIPT), f"http://{LOOPBACK}:{port}{SERVICE_PATH}", "--", body_file.name]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        if finished.returncode != 0:
            raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr[-1000:]}")
    line = next((row for row in finished.stdout.splitlines() if row.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{finished.stdout}\n{finished.stderr}")
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    elapsed = summary["duration_us"] / 1e6
    errors = sum(summary[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return LoadResult(size, "wrk", connections, round(elapsed, 2), summary["requests"], errors,
                      round(summary["requests"] / elapsed, 1), round(summary["p50_us"] / 1000, 2),
                      round(summary["p99_us"] / 1000, 2))


def run_python_load(port: int, body: bytes, size: int, connections: int, seconds: float,
                    max_requests: int = 100_000) -> LoadResult:
    """`connections` threads, each one keep-alive connection sending the same POST until time or count runs out."""
    deadline = time.perf_counter() + seconds
    timings: list[float] = []
    errors = 0
    lock = threading.Lock()
    headers = {"Content-Type": "application/json"}

    def worker() -> None:
        nonlocal errors
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        while time.perf_counter() < deadline:
            with lock:
                if len(timings) + errors >= max_requests:
                    break
            started = time.perf_counter()
            try:
                connection.request("POST", SERVICE_PATH, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()  # gunicorn's sync workers close after each answer
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
            with lock:
                if ok:
                    timings.append(time.perf_counter() - started)
                else:
                    errors += 1
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(value * 1000 for value in timings) or [0.0]
    return LoadResult(size, "python", connections, round(elapsed, 2), len(timings), errors,
                      round(len(timings) / elapsed, 1), round(percentile(ordered, 0.5), 2),
                      round(percentile(ordered, 0.99), 2))


def warm_up(port: int, body: bytes, workers: int, requests_per_worker: int = 10) -> None:
    """Let every worker build its lazily made pieces (model validators, SQL statements) before timing."""
    run_python_load(port, body, 0, workers, seconds=30, max_requests=workers * requests_per_worker)


def run_load(port: int, body: bytes, size: int, connections: int, seconds: float, tool: str = "auto") -> LoadResult:
    if tool == "wrk" or (tool == "auto" and wrk_available()):
        return run_wrk(port, body, size, connections, seconds)
    return run_python_load(port, body, size, connections, seconds)
