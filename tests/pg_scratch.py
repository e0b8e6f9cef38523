"""A throwaway PostgreSQL cluster for the tests that prove the several-replica path (audit, replay refusal across
replicas, crash durability).

HEMOPTYSIS_CDS_TEST_POSTGRES_URL, when set, names a scratch database to use instead (its tables are dropped).
Otherwise, where the PostgreSQL server binaries are installed (`initdb` on PATH or under
/usr/lib/postgresql/<version>/bin, as on Debian), a cluster is created in a temporary directory, listening on a
Unix socket only, and removed at the end of the session. With neither, the tests skip and say why.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV_URL = "HEMOPTYSIS_CDS_TEST_POSTGRES_URL"
DATABASE = "cds_test"
ROLE = "cds"
# No TCP listener: the socket lives in the cluster's own temporary directory, so the usual port cannot clash.
PORT = 5432


def server_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def unavailable_reason() -> str | None:
    """Why no local cluster can be started here, or None when one can."""
    if server_binaries() is None:
        return "no PostgreSQL server binaries (initdb) on this machine"
    if os.geteuid() == 0:
        import pwd
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` system user then (Debian creates it)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def local_cluster() -> Iterator[str]:
    """Start a cluster; yield its SQLAlchemy URL; stop and delete it."""
    reason = unavailable_reason()
    if reason:
        raise LookupError(reason)
    binaries = server_binaries()
    assert binaries is not None
    workdir = Path(tempfile.mkdtemp(prefix="hemoptysis-pg-"))
    data, port = workdir / "data", PORT
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    run = dict(check=True, capture_output=True, timeout=60)
    try:
        subprocess.run(_as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", ROLE, "-A", "trust",
                                        "--no-sync", "-E", "UTF8"]), **run)
        options = f"-k {workdir} -p {port} -c listen_addresses=''"
        subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-o", options,
                                        "-l", str(workdir / "server.log"), "-w", "-t", "30", "start"]), **run)
        try:
            import psycopg
            with psycopg.connect(host=str(workdir), port=port, user=ROLE, dbname="postgres",
                                 autocommit=True) as connection:
                connection.execute(f"CREATE DATABASE {DATABASE}")
            yield f"postgresql+psycopg://{ROLE}@/{DATABASE}?host={workdir}&port={port}"
        finally:
            subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                            "stop"]), capture_output=True, timeout=60)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def drop_tables(url: str) -> None:
    """Start each test from an empty schema (the scratch database is shared by the session)."""
    from sqlalchemy import create_engine

    from server.storage.schema import metadata
    engine = create_engine(url)
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()
