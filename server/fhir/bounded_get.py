"""The one bounded HTTP GET of the service, shared by the FHIR call-backs (fhir/client.py) and the JWKS fetch
(security/tokens.py): no redirects followed, a (connect, read) timeout, and the body read in pieces against a cap,
with a check the caller chooses before each read (the FHIR deadline), so no answer is read past its bounds."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import requests


class BodyTooLarge(Exception):
    """The body grew past what the caller allows; reading stopped there."""


def open_get(session: requests.Session, url: str, *, headers: Mapping[str, str],
             timeout: tuple[float, float]) -> requests.Response:
    """The response with its body not yet read (stream=True); redirects are answered, never followed.
    Raises what requests raises when the server cannot be reached."""
    return session.get(url, headers=dict(headers), allow_redirects=False, stream=True, timeout=timeout)


def read_body(response: requests.Response, fits: Callable[[int], bool],
              before_read: Callable[[], None] | None = None, chunk_size: int = 65536) -> bytearray:
    """The body, decoded, read as it arrives (read1 returns what is there, so a trickle cannot hold one read past
    a socket timeout); BodyTooLarge as soon as `fits(bytes so far)` is false. Read errors are raised as
    urllib3 / OSError / ValueError raise them."""
    body = bytearray()
    while True:
        if before_read is not None:
            before_read()
        chunk = response.raw.read1(chunk_size, decode_content=True)
        if not chunk:
            return body
        body.extend(chunk)
        if not fits(len(body)):
            raise BodyTooLarge()
