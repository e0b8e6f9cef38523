"""The shapes of what clients send, validated with pydantic (CDS Hooks 2.0 §Calling a CDS Service, §Feedback)."""
from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from server.http.errors import ApiError
from server.http.feedback_bounds import instant

FHIR_ID = r"^[A-Za-z0-9\-\.]{1,64}$"


class _Open(BaseModel):
    # Unknown members (extensions, vendor additions) are tolerated, as the specification expects.
    model_config = ConfigDict(extra="allow")


class FhirAuthorization(_Open):
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int = Field(ge=0)
    scope: str
    subject: str
    patient: str | None = None

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("token_type must be 'Bearer'")
        return value

    def __repr__(self) -> str:  # never let the token reach a log through a repr
        return f"FhirAuthorization(token_type={self.token_type!r}, scope={self.scope!r}, access_token=<redacted>)"

    __str__ = __repr__


class HookRequest(_Open):
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1, max_length=200)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @field_validator("fhirServer")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("fhirServer must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("prefetch")
    @classmethod
    def _prefetch_values(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, item in (value or {}).items():
            if item is not None and not (isinstance(item, dict) and isinstance(item.get("resourceType"), str)):
                raise ValueError(f"prefetch '{key}' must be a FHIR resource (with resourceType) or null")
        return value

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> "HookRequest":
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirAuthorization is given without fhirServer (CDS Hooks: fhirServer is then required)")
        return self


class PatientViewContext(_Open):
    userId: str = Field(pattern=r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-\.]{1,64}$")
    patientId: str = Field(pattern=FHIR_ID)
    encounterId: str | None = Field(default=None, pattern=FHIR_ID)


class OrderContext(_Open):
    userId: str = Field(pattern=r"^(Practitioner|PractitionerRole)/[A-Za-z0-9\-\.]{1,64}$")
    patientId: str = Field(pattern=FHIR_ID)
    encounterId: str | None = Field(default=None, pattern=FHIR_ID)
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise ValueError("draftOrders must be a FHIR Bundle")
        return value


class OrderSelectContext(OrderContext):
    selections: list[str] = Field(min_length=1)


CONTEXT_MODELS: dict[str, type[BaseModel]] = {
    "patient-view": PatientViewContext,
    "order-sign": OrderContext,
    "order-select": OrderSelectContext,
}


class AcceptedSuggestion(_Open):
    id: str = Field(min_length=1, max_length=100)


class ReasonCoding(_Open):
    """CDS Hooks Coding: system and code are required; display is optional from the client."""

    system: str = Field(min_length=1, max_length=500)
    code: str = Field(min_length=1, max_length=200)
    display: str | None = Field(default=None, max_length=500)


class OverrideReason(_Open):
    reason: ReasonCoding | None = None
    userComment: str | None = Field(default=None, max_length=4000)

    def stored(self) -> dict[str, Any]:
        """What is kept of an override reason: its known members only (unknown ones are tolerated, not stored)."""
        kept: dict[str, Any] = {}
        if self.reason is not None:
            kept["reason"] = self.reason.model_dump(include={"system", "code", "display"}, exclude_none=True)
        if self.userComment:
            kept["userComment"] = self.userComment
        return kept

    @model_validator(mode="after")
    def _something_said(self) -> "OverrideReason":
        if self.reason is None and not self.userComment:
            raise ValueError("overrideReason needs a reason or a userComment")  # 3.0 ballot invariant cds-fb-3
        return self


class FeedbackItem(_Open):
    card: str = Field(min_length=1, max_length=64)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(min_length=1, max_length=64)

    @field_validator("outcomeTimestamp")
    @classmethod
    def _instant(cls, value: str) -> str:
        return instant(value)

    def stored(self) -> dict[str, Any]:
        """The members that are stored; unknown members are tolerated by validation and dropped here."""
        kept: dict[str, Any] = {"card": self.card, "outcome": self.outcome, "outcomeTimestamp": self.outcomeTimestamp}
        if self.acceptedSuggestions:
            kept["acceptedSuggestions"] = [{"id": item.id} for item in self.acceptedSuggestions]
        if self.overrideReason is not None:
            kept["overrideReason"] = self.overrideReason.stored()
        return kept

    @model_validator(mode="after")
    def _accepted_has_suggestions(self) -> "FeedbackItem":
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an 'accepted' outcome requires acceptedSuggestions")
        if self.outcome == "overridden" and self.acceptedSuggestions:
            raise ValueError("an 'overridden' card has no accepted suggestions (the whole card is overridden)")
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("overrideReason goes with an 'overridden' outcome, not 'accepted'")
        return self


class FeedbackRequest(_Open):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=500)


def validated(model: type[BaseModel], data: Any, prefix: str = ""):
    """Validate or raise a 400 that names every field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()))
            where = f"{prefix}.{where}".strip(".") if prefix else where
            message = item.get("msg", "invalid").removeprefix("Value error, ")
            problems.append((where or prefix or "body", f"{where or 'body'}: {message}"))
        summary = "; ".join(message for _, message in problems[:5])
        raise ApiError(400, f"invalid request: {summary}", problems) from None
