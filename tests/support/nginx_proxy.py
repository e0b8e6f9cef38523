"""Run the shipped deploy/nginx.conf with a private nginx process (own prefix, pid, logs and temp paths in a tmp
dir, a free loopback port), never the system's nginx service. Only what a site must change is rendered: the
listen address (TLS off, loopback), server_name and the upstream address; every other line is the shipped text."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.live_server import REPO, free_port

SHIPPED = REPO / "deploy" / "nginx.conf"
# Debian installs nginx in /usr/sbin, which a non-root PATH often lacks.
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
# The harness's own access log: $upstream_addr is "-" when nginx answered without contacting the service.
ACCESS_FORMAT = "'$status $upstream_addr $request_method $request_uri $request_length'"


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx.conf no longer has exactly one {old!r}: update the test renderer"
    return text.replace(old, new)


def render_site(*, listen: str, upstream_port: int, extra_server_lines: str = "") -> str:
    """The shipped server block with the site-specific lines substituted (each must occur exactly once)."""
    text = SHIPPED.read_text()
    text = _replace_once(text, "listen 443 ssl http2;", f"listen {listen};\n{extra_server_lines}")
    text = _replace_once(text, "server_name cds.example.org;", "server_name localhost;")
    return _replace_once(text, "server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};")


def _main_config(workdir: Path, site: Path) -> str:
    temp = "\n".join(f"    {kind}_temp_path {workdir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would be "nobody", locked out of tmp dirs
    return (f"daemon off;\n{user}worker_processes 1;\npid {workdir / 'nginx.pid'};\n"
            f"error_log {workdir / 'error.log'} info;\nevents {{ worker_connections 512; }}\n"
            f"http {{\n    log_format harness {ACCESS_FORMAT};\n    access_log {workdir / 'access.log'} harness;\n"
            f"{temp}\n    include {site};\n}}\n")


def write_config(workdir: Path, site_text: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    site = workdir / "site.conf"
    site.write_text(site_text)
    config = workdir / "nginx.conf"
    config.write_text(_main_config(workdir, site))
    return config


def nginx_command(workdir: Path, config: Path, *extra: str) -> list[str]:
    return [NGINX, "-e", str(workdir / "error.log"), "-p", str(workdir), "-c", str(config), *extra]


def config_test(workdir: Path, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(nginx_command(workdir, config, "-t"), capture_output=True, text=True, timeout=30)


@contextmanager
def running_nginx(workdir: Path, upstream_port: int) -> Iterator[int]:
    """The rendered shipped file in front of 127.0.0.1:upstream_port; yields nginx's port; stops it (its pid)."""
    port = free_port()
    config = write_config(workdir, render_site(listen=f"127.0.0.1:{port}", upstream_port=upstream_port))
    checked = config_test(workdir, config)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(nginx_command(workdir, config), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (workdir / "error.log").read_text()[-2000:]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen within 10 s"
                time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)  # nginx's master stops its workers
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def access_log(workdir: Path) -> list[str]:
    path = workdir / "access.log"
    return path.read_text().splitlines() if path.exists() else []
