"""Civil-status agency: turns a stored birth registration into the child's person record."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from activities.common import log_access
from registry.db import Registry
from registry.models import BirthRegistration, Person
from workflows.contracts import RecordBirthInput, RecordedBirth

AGENCY = "civil-status"


class CivilRegistry(Protocol):
    async def record_birth(self, inp: RecordBirthInput) -> RecordedBirth: ...


class RegistryCivilRegistry:
    """Built-in: the child's person record in the shared registry, linked to the parents found there."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def record_birth(self, inp: RecordBirthInput) -> RecordedBirth:
        async with self.registry.unit_of_work() as session:
            reg = (await session.execute(
                select(BirthRegistration).where(BirthRegistration.registration_number == inp.registration_number)
                .with_for_update()
            )).scalar_one_or_none()
            if reg is None:
                raise ApplicationError("birth registration is not in the registry", type="RegistrationMissing",
                                       non_retryable=True)
            data: dict[str, Any] = reg.payload
            mother = await _find_person(session, data["mother"]["id_number"])
            father = await _find_person(session, (data.get("father") or {}).get("id_number"))
            if reg.child_person_id is None:
                child_data = data["child"]
                informant = data["informant"]
                child = Person(
                    id=uuid.uuid4(),
                    full_name=child_data["full_name"],
                    sex=child_data["sex"],
                    date_of_birth=date.fromisoformat(child_data["date_of_birth"]),
                    mother_id=mother.id if mother else None,
                    father_id=father.id if father else None,
                    phone=informant.get("phone"),
                    email=informant.get("email"),
                    preferred_language=informant.get("preferred_language", "vi"),
                )
                session.add(child)
                await session.flush()
                reg.child_person_id = child.id
                reg.recorded_at = datetime.now(UTC)
            for parent in (mother, father):
                if parent is not None:
                    log_access(session, citizen=parent.id, agency=AGENCY, purpose="link parent to birth record",
                               workflow_id=inp.workflow_id)
            assert reg.child_person_id is not None
            return RecordedBirth(child_person_id=reg.child_person_id, mother_known=mother is not None,
                                 father_known=father is not None)


async def _find_person(session: Any, id_number: str | None) -> Person | None:
    if not id_number:
        return None
    result = await session.execute(select(Person).where(Person.personal_id_number == id_number))
    person: Person | None = result.scalar_one_or_none()
    return person
