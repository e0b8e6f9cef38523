"""Random (version 4) UUIDs for cards and suggestions, from a per-thread buffer of operating-system randomness.

`uuid.uuid4()` asks the kernel for 16 bytes each time; the call lets go of the GIL, and under load on a worker
whose other threads want it, taking it back cost more than the call itself (py-spy on a loaded gthread worker:
uuid4 ~10 % of a request's samples, ~1 % in process). Here one `os.urandom` fills 64 UUIDs' worth: the same
randomness, one system call per 64, and the 64 written out at once (~0.5 us a UUID; 1.8 written one by one). A
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
# where each of a UUID's 32 hex digits goes in its text (after the dashes at 8, 13, 18 and 23), each text followed by
# a space: a fill is 32 + 5 strided slice copies of 64 bytes each, not 64 five-part f-strings (~0.5 against ~1.5 us a
# UUID)
_TEXT = 37
_DIGIT_AT = tuple(digit + (digit >= 8) + (digit >= 12) + (digit >= 16) + (digit >= 20) for digit in range(32))
_DASHES = b"-" * _PER_FILL
_SPACES = b" " * _PER_FILL
_local = threading.local()


def _forget_after_fork() -> None:
    global _local
    _local = threading.local()


os.register_at_fork(after_in_child=_forget_after_fork)


def _fill() -> list[str]:
    """64 UUIDs from one `os.urandom`, written at once (one hex of the buffer, its digits copied into place with
    strided slices), last first (taken by pop)."""
    raw = bytearray(os.urandom(16 * _PER_FILL))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT_10)
    digits = raw.hex().encode("ascii")
    text = bytearray(_TEXT * _PER_FILL)
    for digit, at in enumerate(_DIGIT_AT):
        text[at::_TEXT] = digits[digit::32]
    for at in (8, 13, 18, 23):
        text[at::_TEXT] = _DASHES
    text[36::_TEXT] = _SPACES
    made = text.decode("ascii").split(" ")
    made.pop()  # the empty string after the last space
    made.reverse()
    return made


def random_uuid() -> str:
    """A random UUID (RFC 9562 version 4, variant 10), as `str(uuid.uuid4())` writes it."""
    made = getattr(_local, "made", None)
    if not made:
        made = _local.made = _fill()
    return made.pop()
