"""read_capped reads the whole body whatever the stream's framing and however it hands the bytes over: a declared
length read as one piece and its end checked, a stream giving short reads, a body running past its declared length
(a server that dechunked it and left a Content-Length), the cap enforced as the bytes come."""
from __future__ import annotations

import io

import pytest

from server.http.body_reader import read_capped
from server.http.errors import ApiError

BODY = bytes(range(256)) * 300  # 76,800 bytes: more than one 64 KiB read


class Trickle(io.RawIOBase):
    """A stream that hands over at most `most` bytes a read, and records the sizes asked."""

    def __init__(self, data: bytes, most: int):
        self._data, self._most, self.asked = data, most, []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        piece, self._data = self._data[:min(size, self._most)], self._data[min(size, self._most):]
        return piece


@pytest.mark.parametrize("most", [1, 7, 4096, 65536, 10**6])
@pytest.mark.parametrize("declared", [len(BODY), None, 100, 0])
def test_the_whole_body_is_read_however_it_comes(most, declared):
    stream = Trickle(BODY, most)
    assert read_capped(stream, declared, 10**6) == BODY
    assert all(size > 0 for size in stream.asked)


def test_a_declared_body_is_asked_for_in_one_piece_then_its_end():
    body = BODY[:40_000]  # one read's worth
    stream = Trickle(body, 10**6)
    assert read_capped(stream, len(body), 10**6) == body
    assert stream.asked == [len(body), 1]


@pytest.mark.parametrize("declared", [None, 10])
def test_a_body_over_the_cap_is_413_as_soon_as_it_passes_it(declared):
    limit = len(BODY) - 1
    with pytest.raises(ApiError) as refused:
        read_capped(Trickle(BODY, 4096), declared, limit)
    assert refused.value.status == 413
    with pytest.raises(ApiError):
        read_capped(Trickle(BODY, 4096), len(BODY), limit)  # declared over the cap: refused before reading


def test_an_empty_body_reads_empty():
    assert read_capped(Trickle(b"", 10), 0, 100) == b""
    assert read_capped(Trickle(b"", 10), None, 100) == b""
