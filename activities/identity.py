"""Identity agency: the 12-digit personal identification number (Decree 137/2015 Art. 13).

The random part is drawn with `secrets`; a unique constraint on the number is the arbiter, so two workers
drawing the same number at once cannot both win: the loser draws again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio.exceptions import ApplicationError

import rules
from activities.common import log_access, recorded_in_this_transaction, require_child
from registry.db import Registry, table_of
from registry.models import IdentityNumber, Person
from workflows.contracts import AssignIdInput, IdAssigned

AGENCY = "identity"
MAX_DRAWS = 100


class IdentityAgency(Protocol):
    async def assign_personal_id(self, inp: AssignIdInput) -> IdAssigned: ...


class RegistryIdentityAgency:
    def __init__(self, registry: Registry, draw: Callable[[], int] | None = None) -> None:
        self.registry = registry
        self._draw: Callable[[], int] = draw or (lambda: secrets.randbelow(1_000_000))

    async def assign_personal_id(self, inp: AssignIdInput) -> IdAssigned:
        async with self.registry.unit_of_work() as session:
            existing = None if recorded_in_this_transaction(session, inp.child_person_id) else await session.scalar(
                select(IdentityNumber.number).where(IdentityNumber.person_id == inp.child_person_id))
            if existing:
                return IdAssigned(newly_assigned=False)
            child = await require_child(session, inp.child_person_id)
            log_access(session, citizen=child.id, agency=AGENCY, purpose="derive ID number prefix (sex, birth year)",
                       workflow_id=inp.workflow_id, fields="sex,date_of_birth")
            prefix = rules.personal_id_prefix(inp.province_code, child.sex, child.date_of_birth)  # type: ignore[arg-type]

        for _ in range(MAX_DRAWS):
            number = rules.compose_personal_id(prefix, self._draw())
            async with self.registry.unit_of_work() as session:
                inserted = await session.scalar(
                    insert(table_of(IdentityNumber))
                    .values(number=number, person_id=inp.child_person_id,
                            registration_number=inp.registration_number)
                    .on_conflict_do_nothing()
                    .returning(IdentityNumber.number))
                if inserted:
                    await session.execute(update(Person).where(Person.id == inp.child_person_id)
                                          .values(personal_id_number=number))
                    return IdAssigned(newly_assigned=True)
                # Either the number is taken (draw again) or a concurrent attempt for this child won.
                mine = await session.scalar(
                    select(IdentityNumber.number).where(IdentityNumber.person_id == inp.child_person_id))
                if mine:
                    return IdAssigned(newly_assigned=False)
        raise ApplicationError(f"no free ID number after {MAX_DRAWS} draws in province {inp.province_code}",
                               type="IdSpaceExhausted")
