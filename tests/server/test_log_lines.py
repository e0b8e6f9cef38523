"""The log line's last guard: with its quick word checks, scrub() redacts exactly what the three patterns applied
unconditionally redact, case and Unicode case variants included; and a line is valid JSON whatever its fields."""
from __future__ import annotations

import json
import logging

from server.run import logjson

SAMPLES = [
    "header Authorization: Bearer abc.def-ghi", "BEARER  xyz", "bEaReR\tq1", "bearer", "access_token=s3cr3t",
    '"ACCESS_TOKEN": "s3cr3t"', "acceſſ_token: zz",  # a long s: IGNORECASE matches it, so must the quick check
    "token eyJhbGciOi.eyJzdWIi.sig and more", "eyJ alone", "plain line with no credential",
    '{"msg": "call", "iss": "https://ehr.example", "hookInstance": "d1577c69"}', "Bearer", "access_token",
]


def _reference(text: str) -> str:
    for pattern, replacement, _word in logjson._SECRETS:
        text = pattern.sub(replacement, text)
    return text


def test_quick_checks_change_nothing_the_patterns_would_redact():
    for sample in SAMPLES:
        for text in (sample, sample.upper(), sample.lower(), f"x {sample} y"):
            assert logjson.scrub(text) == _reference(text), text
    assert logjson.scrub("acceſſ_token: zz") == "acceſſ_token: <redacted>"


def test_a_line_is_json_with_its_fields_even_past_orjson_limits():
    formatter = logjson.JsonLineFormatter()
    record = logging.LogRecord("hemoptysis_cds", logging.INFO, __file__, 1, "call", None, None)
    record.fields = {"status": 200, "ms": 3.25, "big": 2 ** 70, "when": object(), "text": "é Bearer abc"}
    line = json.loads(formatter.format(record))
    assert line["msg"] == "call" and line["status"] == 200 and line["big"] == 2 ** 70
    assert line["text"] == "é Bearer <redacted>"
    record.fields = {"status": 200, "ms": 3.25}
    assert json.loads(formatter.format(record))["ms"] == 3.25
