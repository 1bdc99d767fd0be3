"""What crosses the workflow boundary: references and outcomes only.

These models are what Temporal writes into workflow history, so they hold registry ids (UUIDs), codes and
flags — never a name, an ID number, an address or a date of birth. Agencies read the data from the registry.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
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
    applicable: bool = True
    """False when the step does not apply to this citizen (e.g. no under-6 card for a child already 6): the
    stage records `basis` as the reason and no notice is sent about it."""
    basis: str | None = None


class NoticeInput(ChildRef):
    stage: Stage


class NoticeOutcome(_Ref):
    notification_id: uuid.UUID | None
    """None when no notice was sent (the citizen has died: nothing but the death notice goes out)."""
    newly_created: bool


STAGE_STEPS: dict[str, Stage] = {
    "record_birth": Stage.BIRTH_RECORDED,
    "assign_personal_id": Stage.PERSONAL_ID_ASSIGNED,
    "register_residence": Stage.RESIDENCE_REGISTERED,
    "issue_child_health_card": Stage.HEALTH_INSURANCE_ISSUED,
    "plan_vaccinations": Stage.VACCINATION_PLANNED,
    "add_to_school_forecast": Stage.SCHOOL_FORECAST_ADDED,
}
"""The birth's agency steps, each completing a stage the family is told about."""


def with_notice(step: str) -> str:
    """The activity that runs `step` and the family's notice about its stage in one transaction."""
    return f"{step}_and_notify"


def notice_after(stage: Stage, inp: RecordBirthInput | ChildRef, result: BaseModel) -> NoticeInput | None:
    """The notice a stage's step calls for, given what the step returned; None when nothing happened that the
    family should hear of (no household found yet, or the step does not apply to this child)."""
    if isinstance(result, ResidenceOutcome) and not result.registered:
        return None
    if isinstance(result, StepDone) and not result.applicable:
        return None
    if isinstance(result, RecordedBirth):
        child = result.child_person_id
    elif isinstance(inp, ChildRef):
        child = inp.child_person_id
    else:
        raise TypeError(f"no child to notify about after {type(result).__name__}")
    return NoticeInput(child_person_id=child, workflow_id=inp.workflow_id, stage=stage)


BIRTH_AT_ONCE = "act_on_birth_at_once"
"""The activity that runs every stage of a birth, each with the family's notice, in one transaction."""


class BirthAtOnceInput(_Ref):
    registration_number: str
    province_code: str
    workflow_id: str


class BirthAtOnce(_Ref):
    """What each of the birth's steps returned when they ran in one transaction (`BIRTH_AT_ONCE`), by step name:
    `record_birth`, `assign_personal_id`, `register_residence`, `issue_child_health_card`, `plan_vaccinations`,
    and, once the residence is registered, `add_to_school_forecast` and `start_citizen_lifecycle`. A step that is
    not here still has to run (the residence waits for a person)."""

    recorded: RecordedBirth
    id_assigned: IdAssigned
    residence: ResidenceOutcome
    health_card: StepDone
    vaccinations: StepDone
    school: StepDone | None = None
    lifecycle: StepDone | None = None

    def by_step(self) -> dict[str, BaseModel]:
        steps: dict[str, BaseModel | None] = {
            "record_birth": self.recorded, "assign_personal_id": self.id_assigned,
            "register_residence": self.residence, "issue_child_health_card": self.health_card,
            "plan_vaccinations": self.vaccinations, "add_to_school_forecast": self.school,
            "start_citizen_lifecycle": self.lifecycle}
        return {name: result for name, result in steps.items() if result is not None}


class StageState(_Ref):
    stage: Stage
    state: str  # pending | running | done | needs_attention | not_applicable
    at: str | None = None  # workflow time (ISO) of the last change
    detail: str | None = None


class BirthOutcome(_Ref):
    registration_number: str
    child_person_id: uuid.UUID
    stages: list[StageState]


# ---- the citizen's lifecycle --------------------------------------------------------------------------------


class DoseReported(_Ref):
    """Signal: the health station reported a dose; the report is in the registry (`vaccination_reports`)."""

    report_id: uuid.UUID


class AgendaItem(_Ref):
    """One thing the state will do for the citizen on a date (a reminder, a notice, an escalation).

    `key` names what the item is about (e.g. `dose-reminder/2027-01-20`), so an item is
    acted on once; it is also the notice's dedupe key within the citizen's lifecycle.
    """

    key: str
    kind: str  # dose_reminder | dose_due | dose_overdue | insurance_ending | school_enrolment | id_card_* ...
    on: date
    at: datetime
    """When to act (the jurisdiction's notice hour on `on`); the workflow sleeps until then."""
    summary: str
    """What it is, without personal data (e.g. `dose reminder: DPT_VGB_HIB 2`)."""
    doses: list[str] = []
    """For dose items: `VACCINE.dose` codes."""
    about: date | None = None
    """The date the item is about: the dose's due date, the card's end, the birthday."""


class Agenda(_Ref):
    items: list[AgendaItem]
    stage: str
    """The citizen's life stage today; the run continues as new when it ends."""
    stage_ends_at: datetime | None = None
    today: date
    """The citizen's local date at the workflow's time."""
    deceased: bool = False
    """The citizen's death is recorded: the lifecycle ends (e.g. started by a birth fan-out that finished late)."""


class LifecycleRef(_Ref):
    person_id: uuid.UUID
    workflow_id: str


class AgendaRequest(LifecycleRef):
    as_of: date | None = None
    """Items before this date are not planned (the citizen's past before the lifecycle began); None: today."""
    now: datetime
    """The workflow's time (virtual under the time-skipping test server): what `today` and the stage mean."""


class AgendaAction(LifecycleRef):
    item: AgendaItem


class ActionOutcome(_Ref):
    done: bool
    """False when the registry says the item no longer applies (e.g. the dose was given): nothing was sent."""
    detail: str | None = None


class DoseApplication(LifecycleRef):
    report_id: uuid.UUID


class TimelineEntry(_Ref):
    on: date
    key: str
    kind: str
    summary: str
    state: str  # done | skipped | next | planned
    detail: str | None = None


class LifecycleInput(_Ref):
    """Workflow input; what one run hands to the next on continue-as-new."""

    person_id: uuid.UUID
    started_on: date | None = None
    """The day the lifecycle began (set by the first run); earlier agenda items are the citizen's past."""
    past: list[TimelineEntry] = []
    """What earlier runs did (kept for the `timeline` query)."""
    pending_reports: list[uuid.UUID] = []
    """Dose reports signalled but not yet applied when the previous run ended."""


# ---- death ---------------------------------------------------------------------------------------------------


class DeathCase(_Ref):
    """Workflow input: whose death was registered (the registration itself is in the registry)."""

    person_id: uuid.UUID
    province_code: str


class DeathStep(_Ref):
    person_id: uuid.UUID
    workflow_id: str


class DeathStepDone(_Ref):
    newly_done: bool
    detail: str | None = None
    """What was done, or why nothing was (e.g. `no open residence period`); no personal data."""


class DeathOutcome(_Ref):
    person_id: uuid.UUID
    steps: dict[str, str]


class SupplyHousehold(BaseModel):
    """An operator's `supply_household` update: the household the child is to be registered in. (Defined here, a
    module the sandbox passes through, so a new workflow run does not build the model class again.)"""

    household_id: uuid.UUID
