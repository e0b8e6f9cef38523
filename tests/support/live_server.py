"""A real `hemoptysis-cds serve` (gunicorn) on a free loopback port, for tests that need a server over HTTP:
browsers, scrapes summed across workers, the image's file set. Stopped by its own process group at the end."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any HEMOPTYSIS_CDS_* or metrics setting, plus a development server
    writing into tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMOPTYSIS_CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"HEMOPTYSIS_CDS_AUTH_MODE": "development",
                "HEMOPTYSIS_CDS_DATABASE_URL": f"sqlite:///{tmp_path}/live.sqlite3",
                "HEMOPTYSIS_CDS_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
                "HEMOPTYSIS_CDS_LOG_FORMAT": "text"})
    env.update(extra)
    return env


@contextmanager
def serving(tmp_path: Path, *, workers: int = 2, command: list[str] | None = None, cwd: Path = REPO,
            env: dict[str, str] | None = None, startup_seconds: float = 30,
            argv_override: list[str] | None = None) -> Iterator[str]:
    """`command serve --host --port --workers`; or `argv_override` as is (gunicorn itself), the address then
    given through the environment."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(env or server_env(tmp_path))
    if argv_override:
        argv = argv_override
        env.update({"HEMOPTYSIS_CDS_HOST": "127.0.0.1", "HEMOPTYSIS_CDS_PORT": str(port),
                    "HEMOPTYSIS_CDS_WORKERS": str(workers)})
    else:
        argv = (command or [sys.executable, "-m", "server.cli"]) + [
            "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log_path = tmp_path / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited at start:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server was not healthy within {startup_seconds} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the master and its workers only
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
