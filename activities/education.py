"""Education agency: counts the child into the grade-1 entry forecast of the ward it lives in."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.dialects.postgresql import insert
from temporalio.exceptions import ApplicationError

import rules
from activities.common import WRITTEN_FORECAST, log_access, recorded_in_this_transaction, registered_on
from registry.db import Registry, table_of, transaction_memo
from registry.models import Address, Household, Person, SchoolEntryForecast
from workflows.contracts import ChildRef, StepDone

AGENCY = "education"
ENTRY_PASSED = "no forecast: the child's grade-1 school year had already begun when the birth was registered"

_ADD_TO_FORECAST = insert(table_of(SchoolEntryForecast)).on_conflict_do_nothing()
"""Core, built once."""


class EducationAgency(Protocol):
    async def add_to_school_forecast(self, inp: ChildRef) -> StepDone: ...


class RegistryEducationAgency:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def add_to_school_forecast(self, inp: ChildRef) -> StepDone:
        async with self.registry.unit_of_work() as session:
            if (not recorded_in_this_transaction(session, inp.child_person_id)
                    and await session.get(SchoolEntryForecast, inp.child_person_id) is not None):
                return StepDone(newly_done=False)
            child = await session.get(Person, inp.child_person_id)
            if child is None or child.household_id is None:
                raise ApplicationError("child has no registered residence yet", type="NotReady")
            household = await session.get(Household, child.household_id)
            address = await session.get(Address, household.address_id) if household else None
            if address is None:
                raise ApplicationError("household address missing", type="NotReady")
            log_access(session, citizen=child.id, agency=AGENCY, purpose="school-entry forecast (ward, entry year)",
                       workflow_id=inp.workflow_id, fields="date_of_birth,address")
            if rules.school_entry_passed(child.date_of_birth, await registered_on(session, child.id)):
                return StepDone(newly_done=False, applicable=False, basis=ENTRY_PASSED)
            entry_year = rules.school_entry_year(child.date_of_birth)
            result = await session.execute(_ADD_TO_FORECAST, {
                "person_id": child.id, "province_code": address.province_code, "ward_code": address.ward_code,
                "entry_year": entry_year})
            if result.rowcount:  # type: ignore[attr-defined]
                transaction_memo(session, WRITTEN_FORECAST)[child.id] = entry_year
            return StepDone(newly_done=bool(result.rowcount))  # type: ignore[attr-defined]
