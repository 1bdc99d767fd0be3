"""What crosses the workflow boundary: references and outcomes only.

These models are what Temporal writes into workflow history, so they hold registry ids (UUIDs), codes and
flags — never a name, an ID number, an address or a date of birth. Agencies read the data from the registry.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Stage(StrEnum):
    BIRTH_RECORDED = "birth_recorded"
    PERSONAL_ID_ASSIGNED = "personal_id_assigned"
    RESIDENCE_REGISTERED = "residence_registered"
    HEALTH_INSURANCE_ISSUED = "health_insurance_issued"
    VACCINATION_PLANNED = "vaccination_planned"
    SCHOOL_FORECAST_ADDED = "school_forecast_added"


BIRTH_STAGES: tuple[Stage, ...] = tuple(Stage)


class _Ref(BaseModel):
    model_config = ConfigDict(frozen=True)


class BirthCase(_Ref):
    """Workflow input: the registration to act on (its data is in the registry)."""

    registration_number: str
    province_code: str


class RecordBirthInput(_Ref):
    registration_number: str
    workflow_id: str


class RecordedBirth(_Ref):
    child_person_id: uuid.UUID
    mother_known: bool
    father_known: bool


class ChildRef(_Ref):
    """The child a step acts on, and the workflow on whose behalf it reads personal data."""

    child_person_id: uuid.UUID
    workflow_id: str


class AssignIdInput(ChildRef):
    registration_number: str
    province_code: str


class IdAssigned(_Ref):
    newly_assigned: bool


class ResidenceInput(ChildRef):
    household_id: uuid.UUID | None = None
    """Set when an operator supplies the household; otherwise the parents' households are looked up."""


class ResidenceOutcome(_Ref):
    registered: bool
    household_id: uuid.UUID | None = None
    basis: str | None = None
    attention_reason: str | None = None
    """Machine-readable why, when a person must decide (e.g. `mother-not-in-registry`)."""


class StepDone(_Ref):
    newly_done: bool
    count: int = 0


class NoticeInput(ChildRef):
    stage: Stage


class NoticeOutcome(_Ref):
    notification_id: uuid.UUID
    newly_created: bool


class StageState(_Ref):
    stage: Stage
    state: str  # pending | running | done | needs_attention
    at: str | None = None  # workflow time (ISO) of the last change
    detail: str | None = None


class BirthOutcome(_Ref):
    registration_number: str
    child_person_id: uuid.UUID
    stages: list[StageState]
