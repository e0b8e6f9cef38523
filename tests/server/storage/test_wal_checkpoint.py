"""SQLite WAL checkpoints run in a background thread, not in the commit of a call (server/storage/wal_checkpoint.py):
what a call commits reaches the database file itself within seconds, the commit keeps only a far backstop, and
a call that commits does not pay for the checkpoint."""
from __future__ import annotations

import shutil
import sqlite3
import time

from sqlalchemy import text

from server.storage import wal_checkpoint
from server.storage.store import Store


def _card(uuid: str) -> dict:
    return {"uuid": uuid, "indicator": "critical", "summary": "test card", "source": {"label": "test"}}


def _rows_in_file_alone(database, tmp_path) -> int | None:
    """Copy the database file without its -wal: only checkpointed pages are in it (None: no table there yet)."""
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(database, copy)
    with sqlite3.connect(copy) as connection:
        try:
            return connection.execute("select count(*) from issued_cards").fetchone()[0]
        except sqlite3.OperationalError:
            return None


def _in_file_within_seconds(database, tmp_path, rows: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _rows_in_file_alone(database, tmp_path) == rows:
            return True
        time.sleep(0.05)
    return False


def test_what_a_call_commits_reaches_the_database_file_without_a_checkpoint_in_the_commit(tmp_path):
    database = tmp_path / "cds.sqlite3"
    store = Store(f"sqlite:///{database}")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == wal_checkpoint.BACKSTOP_PAGES
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert _in_file_within_seconds(database, tmp_path, 0)  # the tables, created in the WAL, are now in the file
    before = wal_checkpoint.checkpoints_made()
    store.record_issued("massive-hemoptysis", "hook-1", [_card(f"00000000-0000-4000-8000-{n:012d}") for n in range(3)])
    assert _in_file_within_seconds(database, tmp_path, 3)  # no call made a checkpoint: the thread did
    assert wal_checkpoint.checkpoints_made() > before
    store.engine.dispose()


def test_an_in_memory_database_has_no_checkpoint_thread_work():
    store = Store("sqlite:///:memory:")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000  # SQLite's default, untouched


def test_a_removed_database_is_passed_over_without_a_traceback(tmp_path):
    """A test's temporary database removed while its engine lives on: the thread does not try to open it (a failed
    open left ~50 cyclic objects per pass, counted by the no-garbage test of a later call)."""
    import gc
    import uuid

    gone_dir, kept_dir = tmp_path / "gone", tmp_path / "kept"
    gone_dir.mkdir()
    kept_dir.mkdir()
    gone, kept = Store(f"sqlite:///{gone_dir}/cds.sqlite3"), Store(f"sqlite:///{kept_dir}/cds.sqlite3")
    assert wal_checkpoint.settle()
    gone.record_issued("massive-hemoptysis", "h", [_card(str(uuid.uuid4()))])
    gone.engine.dispose()
    shutil.rmtree(gone_dir)
    gc.collect()
    gc.disable()
    try:
        kept.record_issued("massive-hemoptysis", "h", [_card(str(uuid.uuid4()))])
        assert wal_checkpoint.settle()
        left = gc.collect()
    finally:
        gc.enable()
    assert left < 10
    assert not gone_dir.exists()  # not re-created by an open
    kept.engine.dispose()


def test_a_database_removed_between_the_check_and_the_open_is_not_made_again(tmp_path, monkeypatch):
    """The race the bench met: the file is there when the thread looks, gone when it opens it. The thread's own
    read-write connection never creates a database, so nothing reappears in a directory being removed."""
    import uuid

    database = tmp_path / "cds.sqlite3"
    store = Store(f"sqlite:///{database}")
    assert wal_checkpoint.settle()
    store.record_issued("massive-hemoptysis", "h", [_card(str(uuid.uuid4()))])
    assert wal_checkpoint.settle()
    store.engine.dispose()
    for name in ("cds.sqlite3", "cds.sqlite3-wal", "cds.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    monkeypatch.setattr(wal_checkpoint.os.path, "exists", lambda _path: True)  # it was there when looked at
    before = wal_checkpoint.checkpoints_made()
    wal_checkpoint._checkpointer.checkpoint(store.engine)
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # no empty database made in its place
    assert wal_checkpoint.checkpoints_made() == before


def test_the_thread_survives_request_threads_committing_while_it_passes(tmp_path):
    """Commits from many threads (gthread workers) while the thread takes its set of databases: it keeps
    running and the last rows reach the file."""
    import threading
    import uuid

    stores = [Store(f"sqlite:///{tmp_path}/cds-{n}.sqlite3") for n in range(4)]

    def commits(store):
        for _ in range(150):
            store.record_issued("massive-hemoptysis", "h", [_card(str(uuid.uuid4()))])

    threads = [threading.Thread(target=commits, args=(store,)) for store in stores for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert any(thread.name == "sqlite-wal-checkpoint" and thread.is_alive() for thread in threading.enumerate())
    for n, store in enumerate(stores):
        assert _in_file_within_seconds(tmp_path / f"cds-{n}.sqlite3", tmp_path, 300)
        store.engine.dispose()
