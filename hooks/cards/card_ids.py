"""Random (version 4) UUIDs for cards and suggestions, from a per-thread buffer of operating-system randomness.

`uuid.uuid4()` asks the kernel for 16 bytes each time; the call lets go of the GIL, and under load on a worker
whose other threads want it, taking it back cost more than the call itself (py-spy on a loaded gthread worker:
uuid4 ~10 % of a request's samples, ~1 % in process). Here one `os.urandom` fills 64 UUIDs' worth: the same
randomness, one system call per 64, and the 64 written out at once (~1.3 us a UUID; 1.8 written one by one). A
forked child (a gunicorn worker) starts with an empty buffer, so two workers never hand out the bytes of one buffer.
"""
from __future__ import annotations

import os
import threading

_PER_FILL = 64
# each byte value to itself with the version (4) or variant (10) bits set: a C-level translate per fill, not a
# generator over its 64 bytes
_VERSION_4 = bytes((byte & 0x0F) | 0x40 for byte in range(256))
_VARIANT_10 = bytes((byte & 0x3F) | 0x80 for byte in range(256))
_local = threading.local()


def _forget_after_fork() -> None:
    global _local
    _local = threading.local()


os.register_at_fork(after_in_child=_forget_after_fork)


def _fill() -> list[str]:
    """64 UUIDs from one `os.urandom`, written at once (one hex of the buffer), last first (taken by pop)."""
    raw = bytearray(os.urandom(16 * _PER_FILL))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT_10)
    text = raw.hex()
    made = [f"{text[at:at + 8]}-{text[at + 8:at + 12]}-{text[at + 12:at + 16]}-{text[at + 16:at + 20]}-"
            f"{text[at + 20:at + 32]}" for at in range(0, len(text), 32)]
    made.reverse()
    return made


def random_uuid() -> str:
    """A random UUID (RFC 9562 version 4, variant 10), as `str(uuid.uuid4())` writes it."""
    made = getattr(_local, "made", None)
    if not made:
        made = _local.made = _fill()
    return made.pop()
