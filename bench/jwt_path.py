"""The verified-JWT path (CDS Hooks 2.0 §Trusting CDS Clients), measured only once the security layer is in:
without server/auth.py there is nothing to verify and the measurement is skipped, not faked."""
from __future__ import annotations

import importlib.util


def measure(size: int, repetitions: int) -> dict:
    if importlib.util.find_spec("server.auth") is None:
        return {"skipped": "server/auth.py is not present (the security layer is not merged yet)"}
    return {"skipped": "server/auth.py is present but this bench does not know its signing settings yet"}
