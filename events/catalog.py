"""The catalogue of event types the service consumes: one entry each, with its payload model, its subject and
what the bridge does with it. The JSON Schemas, the AsyncAPI document and the publisher's subject all come
from here, so a new event type is one entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

from events.birth_corrected import BIRTH_CORRECTED, CORRECTION_DATASCHEMA, CORRECTION_SUBJECT_EVENT, BirthCorrected
from events.birth_registered import BIRTH_DATASCHEMA, BIRTH_REGISTERED, BIRTH_SUBJECT_EVENT, BirthRegistered
from events.death_registered import DEATH_DATASCHEMA, DEATH_REGISTERED, DEATH_SUBJECT_EVENT, DeathRegistered
from events.residence_changed import (
    RESIDENCE_CHANGED,
    RESIDENCE_DATASCHEMA,
    RESIDENCE_SUBJECT_EVENT,
    ResidenceChanged,
)
from events.vaccination_administered import (
    VACCINATION_ADMINISTERED,
    VACCINATION_DATASCHEMA,
    VACCINATION_SUBJECT_EVENT,
    VaccinationAdministered,
)

SCHEMA_DIR: Final = "events/schemas"
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def _payload_schema(model: type[BaseModel], schema_id: str, title: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = schema_id
    schema["title"] = title
    return schema


@dataclass(frozen=True)
class EventContract:
    """One event type the service consumes: its payload model and how it is published and handled."""

    name: str  # component name, e.g. "BirthRegistered"
    event_type: str
    dataschema: str
    model: type[BaseModel]
    domain: str  # first subject token: civil | health
    subject_event: str  # last subject token
    title: str  # e.g. "Registered births"
    summary: str  # one sentence: what one message means
    handling: str  # what the consumer does with it
    subject: dict[str, Any] | None = None  # the CloudEvents `subject` attribute, if the event sets it

    @property
    def schema_path(self) -> str:
        return f"{SCHEMA_DIR}/{self.subject_event}.schema.json"

    @property
    def channel(self) -> str:
        return f"{self.domain}{''.join(w.title() for w in self.subject_event.split('_'))}"

    def payload_schema(self) -> dict[str, Any]:
        label = re.sub(r"(?<!^)([A-Z])", r" \1", self.name).capitalize()  # "BirthRegistered" -> "Birth registered"
        return _payload_schema(self.model, self.dataschema, f"{label} (data of {self.event_type})")


CONTRACTS: Final[list[EventContract]] = [
    EventContract(
        "BirthRegistered", BIRTH_REGISTERED, BIRTH_DATASCHEMA, BirthRegistered, "civil", BIRTH_SUBJECT_EVENT,
        "Registered births", "A civil-status office registered a birth.",
        "A valid event is stored in the registry (idempotent by event id), the birth-registration workflow is "
        "started (id birth-<registration number>), then the message is acked.",
        {"type": "string", "description": "The registration number (same as data.registration_number)."}),
    EventContract(
        "VaccinationAdministered", VACCINATION_ADMINISTERED, VACCINATION_DATASCHEMA, VaccinationAdministered,
        "health", VACCINATION_SUBJECT_EVENT, "Administered vaccinations",
        "A health station gave a child a dose of a vaccine.",
        "The child is found in the registry by personal ID number (unknown or deceased: deadLetter), the dose "
        "report is kept once per event (source + id), and the citizen's lifecycle workflow (id citizen-<person "
        "uuid>) is signalled with the report id, started first if needed; a redelivered event signals again with "
        "the same report id."),
    EventContract(
        "DeathRegistered", DEATH_REGISTERED, DEATH_DATASCHEMA, DeathRegistered, "civil", DEATH_SUBJECT_EVENT,
        "Registered deaths", "A civil-status office registered a death.",
        "The deceased is found by personal ID number and name (unknown, mismatched, or already recorded dead on "
        "another date: deadLetter); the registration is kept once per person and DeathRegistrationWorkflow "
        "(id death-<person uuid>) is started: the person is marked deceased, the lifecycle stopped, residence "
        "deregistered, the card closed, the funeral allowance recorded and the family told once.",
        {"type": "string", "description": "The death registration number (same as data.registration_number)."}),
    EventContract(
        "ResidenceChanged", RESIDENCE_CHANGED, RESIDENCE_DATASCHEMA, ResidenceChanged, "civil", RESIDENCE_SUBJECT_EVENT,
        "Registered moves", "A civil-status office registered a citizen's move to another household.",
        "The citizen is found by personal ID number and the household by its number (unknown, deceased, a move "
        "before birth or before the current residence, or into the current household: deadLetter); the move is "
        "kept once per event (source + id) and per person, household and day, and ResidenceChangeWorkflow (id "
        "move-<change uuid>) is started: the residence period closes and a new one opens, the school forecast "
        "follows the child, the lifecycle is told (agenda_changed) and the family is told once."),
    EventContract(
        "BirthCorrected", BIRTH_CORRECTED, CORRECTION_DATASCHEMA, BirthCorrected, "civil", CORRECTION_SUBJECT_EVENT,
        "Corrected births", "A civil-status office corrected a registered birth (name, date of birth, sex).",
        "The registration is found by province and number (unknown, nothing different from the registry, or a "
        "date of birth the birth rules reject: deadLetter); the correction is kept once per event (source + id) "
        "and BirthCorrectionWorkflow (id correction-<correction uuid>) is started: the civil registry applies it, "
        "a changed sex or birth year re-issues the personal ID number (the old one cancelled), a changed date "
        "re-plans vaccinations, card validity and school entry, and the family is told once.",
        {"type": "string", "description": "The registration number (same as data.registration_number)."}),
]


EVENT_SUBJECTS: Final[dict[str, tuple[str, str]]] = {c.event_type: (c.domain, c.subject_event) for c in CONTRACTS}
"""CloudEvent type -> (first subject token, last subject token)."""
