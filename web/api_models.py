"""The request and response models of the JSON API under ``/api/v1`` (the routing
configuration, simulate, replay, fairness), and its error answers for OpenAPI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from domain.config import Problem
from domain.lead import AT_INTAKE, LeadSubmission
from domain.routing_review import PoolFairness, Replay, RepRef
from domain.scoring import ScoreResult

MAX_INT = 2**31 - 1  # an INTEGER column's largest value
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


class FieldError(BaseModel):
    field: str
    message: str
    line: int | None = None


class ErrorOut(BaseModel):
    detail: list[FieldError] | str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 422, 428)
}


def body_doc(model: type[BaseModel], *, required: bool) -> dict[str, Any]:
    """A request body of JSON (``model``) or YAML (the document itself), for OpenAPI."""
    return {
        "required": required,
        "content": {
            "application/json": {"schema": model.model_json_schema()},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }


# ------------------------------------------------------------------ the configuration


class PublishedOut(BaseModel):
    version: int
    config: dict[str, Any]


class DraftOut(BaseModel):
    revision: int = Field(description="0: no draft saved yet (config is then the one in force)")
    config: dict[str, Any]
    updated_by: str | None = None
    updated_at: datetime | None = None


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revision: int = Field(ge=0, le=MAX_INT, description="the revision this edit is based on")
    config: dict[str, Any]


class DraftSaved(BaseModel):
    revision: int
    problems: list[Problem] = Field(description="what keeps the draft from being published")


class ValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] | None = None


class ValidationOut(BaseModel):
    valid: bool
    problems: list[Problem]


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=2000)


class VersionOut(BaseModel):
    version: int


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_INT)


class VersionInfoOut(BaseModel):
    version: int
    published_at: datetime
    published_by: str
    note: str
    diff: str = Field(description="unified diff of its YAML against the version before it")


# ------------------------------------------------------- simulate, replay, fairness


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead: LeadSubmission = Field(description="the lead's fields, as POST /leads takes them")
    config: Literal["published", "draft"] = "published"
    at: AwareDatetime | None = Field(None, description="decision time (default: now)")

    @field_validator("lead", mode="wrap")
    @classmethod
    def _as_at_intake(cls, value: Any, handler: Any) -> LeadSubmission:
        # Refused exactly as POST /leads refuses it (control characters, long addresses).
        if isinstance(value, dict):
            return LeadSubmission.model_validate(value, context=AT_INTAKE)
        result: LeadSubmission = handler(value)
        return result

    @field_validator("at")
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        if value is not None and not EARLIEST <= value < LATEST:
            raise ValueError("must be between the years 2000 and 2099")
        return value


class Simulated(BaseModel):
    config: Literal["published", "draft"]
    config_version: int | None = Field(description="published version (0: none published)")
    draft_revision: int | None
    at: datetime
    score: int
    grade: str
    rule: str
    pool: str | None
    rep: RepRef | None
    queue: str | None
    fallback: bool
    reason: str
    explanation: dict[str, Any]
    scoring: ScoreResult | None = Field(
        None,
        description="the score explained: fit and engagement points, and each rule's part "
        "with its reason (the configuration's scoring model)",
    )


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(100, ge=1, le=10_000, description="how many of the latest leads")


class Replayed(Replay):
    draft_revision: int = Field(description="the draft revision replayed (0: none saved)")


class Fairness(PoolFairness):
    config_version: int = Field(description="published version (0: none published)")
    days: int
    since: datetime
