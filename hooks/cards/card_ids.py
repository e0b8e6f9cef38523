"""Random (version 4) UUIDs for cards and suggestions, from a per-thread buffer of operating-system randomness.

`uuid.uuid4()` asks the kernel for 16 bytes each time; the call lets go of the GIL, and under load on a worker
whose other threads want it, taking it back cost more than the call itself (py-spy on a loaded gthread worker:
uuid4 ~10 % of a request's samples, ~1 % in process). Here one `os.urandom` fills 64 UUIDs' worth: the same
randomness, one system call per 64. A forked child (a gunicorn worker) starts with an empty buffer, so two
workers never hand out the bytes of one buffer.
"""
from __future__ import annotations

import os
import threading

_PER_FILL = 64
_local = threading.local()


def _forget_after_fork() -> None:
    global _local
    _local = threading.local()


os.register_at_fork(after_in_child=_forget_after_fork)


def random_uuid() -> str:
    """A random UUID (RFC 9562 version 4, variant 10), as `str(uuid.uuid4())` writes it."""
    buffer = getattr(_local, "buffer", None)
    position = getattr(_local, "position", 0)
    if buffer is None or position >= len(buffer):
        buffer, position = _local.buffer, _local.position = os.urandom(16 * _PER_FILL), 0
    chunk = bytearray(buffer[position:position + 16])
    _local.position = position + 16
    chunk[6] = (chunk[6] & 0x0F) | 0x40  # version 4
    chunk[8] = (chunk[8] & 0x3F) | 0x80  # variant 10
    text = chunk.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
