"""Compatibility re-exports: the event models now live in one module per responsibility.

- :mod:`events.envelope` — the CloudEvents envelope, reasons, shared field types;
- :mod:`events.birth_registered` — ``vn.gov.civil.birth.registered``;
- :mod:`events.vaccination_administered` — ``vn.gov.health.vaccination.administered``.

New code imports from those modules. The clock seam for tests is ``events.envelope._now_utc``.
"""

from events.birth_registered import (
    BIRTH_DATASCHEMA,
    BIRTH_REGISTERED,
    BIRTH_SUBJECT_EVENT,
    REGISTRATION_CLOCK_SKEW,
    BirthRegistered,
    Child,
    Informant,
    Parent,
    make_birth_event,
    parse_birth_event,
)
from events.envelope import (
    CLOUDEVENT_SCHEMA_ID,
    VIETNAM_TZ,
    CloudEvent,
    InvalidEvent,
    Name,
    civil_subject,
    encode_event,
    health_subject,
    validation_reasons,
)

__all__ = [
    "BIRTH_DATASCHEMA",
    "BIRTH_REGISTERED",
    "BIRTH_SUBJECT_EVENT",
    "CLOUDEVENT_SCHEMA_ID",
    "REGISTRATION_CLOCK_SKEW",
    "VIETNAM_TZ",
    "BirthRegistered",
    "Child",
    "CloudEvent",
    "Informant",
    "InvalidEvent",
    "Name",
    "Parent",
    "civil_subject",
    "encode_event",
    "health_subject",
    "make_birth_event",
    "parse_birth_event",
    "validation_reasons",
]
