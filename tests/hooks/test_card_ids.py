"""Card and suggestion UUIDs from the per-thread buffer: version 4, distinct, written as uuid.uuid4 writes them, and
never the same bytes in a forked child (two gunicorn workers) or in two threads."""
from __future__ import annotations

import os
import re
import threading
import uuid

from hooks.cards.card_ids import random_uuid

CANONICAL = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_version_4_distinct_and_canonical_across_refills():
    made = [random_uuid() for _ in range(1000)]  # past several refills of the 64-UUID buffer
    assert len(set(made)) == len(made)
    for text in made:
        assert CANONICAL.match(text), text
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_two_threads_draw_different_bytes():
    found: dict[str, list[str]] = {}

    def draw(name: str) -> None:
        found[name] = [random_uuid() for _ in range(200)]

    threads = [threading.Thread(target=draw, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(found["a"]) & set(found["b"])


def test_a_forked_child_does_not_repeat_its_parents_buffer():
    random_uuid()  # the parent's buffer holds 63 more UUIDs' worth
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(reader)
        os.write(writer, ",".join(random_uuid() for _ in range(5)).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        in_child = pipe.read().split(",")
    os.waitpid(child, 0)
    in_parent = [random_uuid() for _ in range(5)]
    assert len(in_child) == 5 and not set(in_child) & set(in_parent)


def test_each_uuid_is_its_16_bytes_of_randomness_with_only_the_version_and_variant_bits_set(monkeypatch):
    """The UUIDs are written 64 at a time: each must be its own 16 bytes of the buffer, in order, every other bit
    as the system gave it."""
    from hooks.cards import card_ids

    given = bytes((index * 37 + 11) % 256 for index in range(16 * 64))
    monkeypatch.setattr(card_ids, "_local", threading.local())
    monkeypatch.setattr(card_ids.os, "urandom", lambda size: given[:size])
    for number in range(64):
        expected = bytearray(given[16 * number:16 * number + 16])
        expected[6] = (expected[6] & 0x0F) | 0x40
        expected[8] = (expected[8] & 0x3F) | 0x80
        assert random_uuid() == str(uuid.UUID(bytes=bytes(expected)))


def test_every_fill_writes_each_uuid_as_the_uuid_module_does(monkeypatch):
    """The strided writer against uuid.UUID over several fills of real randomness (every hex digit and dash placed)."""
    from hooks.cards import card_ids

    given: list[bytes] = []
    real = os.urandom

    def recorded(size: int) -> bytes:
        given.append(real(size))
        return given[-1]

    monkeypatch.setattr(card_ids, "_local", threading.local())
    monkeypatch.setattr(card_ids.os, "urandom", recorded)
    made = [random_uuid() for _ in range(64 * 5)]
    assert len(given) == 5
    expected = []
    for buffer in given:
        for number in range(64):
            raw = bytearray(buffer[16 * number:16 * number + 16])
            raw[6] = (raw[6] & 0x0F) | 0x40
            raw[8] = (raw[8] & 0x3F) | 0x80
            expected.append(str(uuid.UUID(bytes=bytes(raw))))
    assert made == expected
