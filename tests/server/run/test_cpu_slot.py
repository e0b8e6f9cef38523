"""One call computes at a time per process and lets go while it waits on the network (server/run/cpu_slot.py).
The end-to-end half, a call waiting on a trickling FHIR server not holding up a complete-prefetch call in the
same one-worker gunicorn, is tests/server/run/test_slow_clients.py."""
from __future__ import annotations

import threading
import time

from server.run.cpu_slot import computing, waiting_on_the_network


def _second_call_entered_within(seconds: float, first_body) -> bool:
    entered = threading.Event()
    first_inside = threading.Event()

    def first():
        with computing():
            first_inside.set()
            first_body()

    def second():
        first_inside.wait(2)
        with computing():
            entered.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    answer = entered.wait(seconds)
    for thread in threads:
        thread.join(5)
    return answer


def test_a_second_call_waits_while_the_first_computes():
    assert not _second_call_entered_within(0.3, lambda: time.sleep(0.6))


def test_a_call_waiting_on_the_network_lets_the_second_compute():
    def waits_on_a_fhir_server():
        with waiting_on_the_network():
            time.sleep(0.6)

    assert _second_call_entered_within(0.3, waits_on_a_fhir_server)


def test_the_slot_is_reentrant_and_letting_go_without_holding_it_does_nothing():
    with waiting_on_the_network():  # not holding: a no-op
        pass
    with computing():
        with computing():  # an inner computing does not deadlock
            with waiting_on_the_network():
                pass
    done = threading.Event()

    def another_call():
        with computing():
            done.set()

    threading.Thread(target=another_call).start()
    assert done.wait(1)  # the slot was left free

