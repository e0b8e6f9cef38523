"""Request bodies read whole and capped, whatever their framing. With a chunked body there is no Content-Length to
check first, and one read of the WSGI stream may return only the first chunk: the body is read to its end, and
refused with 413 as soon as it passes the cap (before: cut at the cap, or at the first chunk, and parsed as is)."""
from __future__ import annotations

from typing import BinaryIO

from server.http.errors import ApiError

_READ = 64 * 1024


def read_capped(stream: BinaryIO, declared_length: int | None, limit: int) -> bytes:
    if declared_length is not None and declared_length > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes")
    parts, total = [], 0
    while True:
        size = min(_READ, limit + 1 - total)
        if declared_length is not None:
            # never more asked for than the declared length still to come, then one byte to see the end (the
            # stream's read makes and zeroes a buffer of the size asked; a body without a length is read as before)
            if total < declared_length:
                size = min(size, declared_length - total)
            elif total == declared_length:
                size = 1
        chunk = stream.read(size)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes")
        parts.append(chunk)
