"""Errors the service answers with: an HTTP status and a FHIR OperationOutcome that names the problem
(CDS Hooks 3.0 ballot: "SHOULD include an OperationOutcome" on non-2xx; harmless for 2.0 clients)."""
from __future__ import annotations

from collections.abc import Iterable

# HTTP status -> OperationOutcome issue type (FHIR R4 issue-type value set)
_ISSUE_CODE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               408: "timeout", 409: "conflict", 412: "not-found", 413: "too-costly", 414: "too-long",
               415: "not-supported", 422: "invalid", 429: "throttled", 431: "too-long", 500: "exception",
               501: "not-supported", 503: "transient"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, expressions: Iterable[tuple[str, str]] = (),
                 code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code  # an issue type that says more than the status does (a 412 may be a timeout or a conflict)
        # (expression, message) pairs, one issue each, e.g. ("context.patientId", "field required")
        self.expressions = list(expressions)

    def outcome(self) -> dict:
        return operation_outcome(self.status, self.message, self.expressions, self.code)


def operation_outcome(status: int, message: str, expressions: Iterable[tuple[str, str]] = (),
                      code: str | None = None) -> dict:
    code = code or _ISSUE_CODE.get(status, "processing")
    issues = [{"severity": "error", "code": code, "diagnostics": message}]
    for expression, detail in expressions:
        issues.append({"severity": "error", "code": code, "diagnostics": detail, "expression": [expression]})
    return {"resourceType": "OperationOutcome", "issue": issues}
