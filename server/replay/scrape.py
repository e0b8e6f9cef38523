"""`hemoptysis-cds scrape URL`: read GET /metrics once and print it, signing a fresh client JWT for the call when
the server requires one (each jti is accepted once, so a fixed token cannot be reused scrape after scrape). For a
node-exporter textfile collector, a cron job or a person; the token is never printed."""
from __future__ import annotations

import sys
from pathlib import Path

import requests

from server.replay.target import JwtSigner, TargetError


def command(url: str, *, jwt_key: str | None, jwt_issuer: str | None, jwt_kid: str | None,
            jwt_jku: str | None = None, timeout: float = 10.0) -> int:
    signing = [jwt_key, jwt_issuer, jwt_kid]
    if any(signing) and not all(signing):
        print("scrape: --jwt-key, --jwt-issuer and --jwt-kid go together", file=sys.stderr)
        return 2
    target = url.rstrip("/").removesuffix("/metrics") + "/metrics"
    headers = {}
    try:
        if jwt_key:
            signer = JwtSigner(Path(jwt_key).read_bytes(), jwt_issuer, jwt_kid, jwt_jku)
            headers["Authorization"] = f"Bearer {signer.token(target)}"  # aud: the exact URL called
        response = requests.get(target, headers=headers, timeout=timeout, allow_redirects=False)
    except (OSError, TargetError) as error:
        print(f"scrape: {error}", file=sys.stderr)
        return 2
    except requests.RequestException as error:
        print(f"scrape: GET {target} failed ({type(error).__name__})", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"scrape: GET {target} answered {response.status_code}", file=sys.stderr)
        return 1
    sys.stdout.write(response.text)
    return 0
