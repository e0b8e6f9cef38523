"""What the FHIR call-backs of one hook call may spend: one wall-clock deadline shared by all of them (a socket
timeout bounds one read, not a server trickling a byte every few seconds or ten slow pages), and a cap on the
call-backs in flight to any one FHIR server from this process (a slow server cannot take every fetch thread)."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class BudgetExceeded(Exception):
    """The deadline passed, or no call-back slot for this server came free before it."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code  # OperationOutcome issue type: timeout | throttled


class Deadline:
    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._ends = clock() + seconds

    def remaining(self) -> float:
        return self._ends - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self, server: str) -> float:
        """The seconds left, or BudgetExceeded naming the server when none are."""
        left = self.remaining()
        if left <= 0:
            raise BudgetExceeded(f"the FHIR server {server} did not answer within the call's deadline of "
                                 f"{self.seconds:g} s", "timeout")
        return left


class ServerSlots:
    """At most `per_server` call-backs in flight to one FHIR base URL, process-wide."""

    def __init__(self, per_server: int):
        self.per_server = per_server
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    def _semaphore(self, server: str) -> threading.BoundedSemaphore:
        with self._lock:
            found = self._slots.get(server)
            if found is None:
                found = self._slots[server] = threading.BoundedSemaphore(self.per_server)
            return found

    @contextmanager
    def slot(self, server: str, deadline: Deadline) -> Iterator[None]:
        semaphore = self._semaphore(server)
        if not semaphore.acquire(timeout=max(0.0, deadline.check(server))):
            raise BudgetExceeded(f"the FHIR server {server} already has {self.per_server} call-backs in progress "
                                 f"from this service; none came free within the call's deadline of "
                                 f"{deadline.seconds:g} s", "throttled")
        try:
            yield
        finally:
            semaphore.release()
