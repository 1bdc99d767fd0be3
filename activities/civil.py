"""Civil-status agency: turns a stored birth registration into the child's person record.

A parent is linked only when the person found by the ID number is the parent the office named
(`registry.matching`: name, sex, birth year, age); otherwise the child is not linked to that person, and what was
found per parent is kept with the registration (codes only) for the residence agency to report.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from temporalio.exceptions import ApplicationError

from activities.common import log_access, remember_recorded_now, remember_registered_on
from registry.births import remember_parent_match
from registry.db import Registry
from registry.matching import MATCHED, RecordedPerson, Role, match_outcome
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
            # The row names its workflow (`birth-<province>-<number>`, or `birth-<number>` from before 0004).
            reg = (await session.execute(
                select(BirthRegistration).where(BirthRegistration.workflow_id == inp.workflow_id)
                .with_for_update()
            )).scalar_one_or_none()
            if reg is None:
                raise ApplicationError("birth registration is not in the registry", type="RegistrationMissing",
                                       non_retryable=True)
            data: dict[str, Any] = reg.payload
            born = date.fromisoformat(data["child"]["date_of_birth"])
            named = {role: data.get(role) or {} for role in ("mother", "father")}
            on_record = await _persons_by_id_number(session, [n.get("id_number") for n in named.values()])
            mother, mother_found = _match_parent(session, "mother", named["mother"], on_record, born, inp.workflow_id)
            father, father_found = _match_parent(session, "father", named["father"], on_record, born, inp.workflow_id)
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
                await session.flush()  # the child's row first: the registration refers to it
                remember_recorded_now(session, child.id)
                reg.parent_match = {"mother": mother_found, "father": father_found}
                reg.child_person_id = child.id
                reg.recorded_at = datetime.now(UTC)
            assert reg.child_person_id is not None
            remember_registered_on(session, reg.child_person_id, reg.registered_at)
            remember_parent_match(session, reg)
            return RecordedBirth(child_person_id=reg.child_person_id, mother_known=mother is not None,
                                 father_known=father is not None)


_PERSONS_BY_ID_NUMBER = select(Person).where(
    Person.personal_id_number == any_(bindparam("numbers", type_=ARRAY(String()))))


async def _persons_by_id_number(session: Any, numbers: list[str | None]) -> dict[str, Person]:
    """The persons the event's parents' ID numbers name, in one round trip (none when no number is given)."""
    wanted = [n for n in numbers if n]
    if not wanted:
        return {}
    found = (await session.scalars(_PERSONS_BY_ID_NUMBER, {"numbers": wanted})).all()
    return {p.personal_id_number: p for p in found if p.personal_id_number}


def _match_parent(session: Any, role: Role, named: dict[str, Any], on_record: dict[str, Person], child_born: date,
                  workflow_id: str) -> tuple[Person | None, str]:
    """The person to link as the child's `role` (None unless the record matches) and what was found."""
    id_number = named.get("id_number")
    person = on_record.get(id_number) if id_number else None
    found = match_outcome(role, id_number=id_number, named=named.get("full_name"), child_born=child_born,
                          person=None if person is None else RecordedPerson(
                              full_name=person.full_name, sex=person.sex, date_of_birth=person.date_of_birth))
    if person is None:
        return None, found
    linked = found == MATCHED
    log_access(session, citizen=person.id, agency=AGENCY, workflow_id=workflow_id,
               purpose="link parent to birth record" if linked else "match parent to birth record (no match)",
               fields="personal_id_number,full_name,sex,date_of_birth")
    return (person if linked else None), found
