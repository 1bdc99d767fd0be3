"""What each agency does when a citizen moves to another household (the civil-status office registered it).

- residence: the open residence period ends on the day of the move (`ended_by="move"`) and a new one opens in the
  new household (`started_by="move"`); the person's household follows;
- education: a child counted in the grade-1 forecast is counted in the new ward;
- the health station is re-targeted by itself: an overdue-dose escalation reads the residence when it escalates
  (activities/lifecycle.py), so a task created after the move names the new ward;
- notification: the family is told once.

Each step reads the stored move (`residence_changes`) and is idempotent: the period opened by this workflow is
recognised on a retry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.exceptions import ApplicationError

import rules
from activities.common import log_access
from activities.notification import RegistryNotificationAgency
from registry.db import Registry
from registry.models import Address, Household, Person, ResidenceChange, ResidencePeriod, SchoolEntryForecast
from workflows.change_contracts import ChangeRef, ChangeStep, MoveOutcome
from workflows.contracts import NoticeOutcome

RESIDENCE = "residence"
EDUCATION = "education"
MOVE_NOTICE = "residence_changed"


async def _change(session: AsyncSession, inp: ChangeRef) -> ResidenceChange:
    change = await session.get(ResidenceChange, inp.change_id)
    if change is None or change.person_id != inp.person_id:
        raise ApplicationError("residence change is not in the registry", type="ChangeMissing", non_retryable=True)
    return change


async def household_address(session: AsyncSession, household_id: Any) -> tuple[Household | None, Address | None]:
    household = await session.get(Household, household_id) if household_id else None
    address = await session.get(Address, household.address_id) if household else None
    return household, address


class RegistryMoveAgencies:
    def __init__(self, registry: Registry, notices: RegistryNotificationAgency) -> None:
        self.registry = registry
        self.notices = notices

    async def move_residence(self, inp: ChangeRef) -> MoveOutcome:
        """Residence: close the open period on the day of the move, open one in the new household."""
        async with self.registry.unit_of_work() as session:
            change = await _change(session, inp)
            person = await session.get(Person, inp.person_id, with_for_update=True)
            if person is None:
                raise ApplicationError("person record missing", type="PersonMissing", non_retryable=True)
            periods = (await session.scalars(
                select(ResidencePeriod).where(ResidencePeriod.person_id == person.id)
                .order_by(ResidencePeriod.valid_from, ResidencePeriod.created_at).with_for_update())).all()
            if any(p.started_by == "move" and p.workflow_id == inp.workflow_id for p in periods):
                return MoveOutcome(moved=True, detail="moved (earlier attempt)")
            if person.status == "deceased":
                return MoveOutcome(moved=False, detail="citizen-deceased")
            current = next((p for p in reversed(periods) if p.valid_to is None), None)
            if current is not None and current.valid_from > change.moved_on:
                return MoveOutcome(moved=False, detail="superseded-by-later-residence")
            if (current.household_id if current else person.household_id) == change.household_id:
                return MoveOutcome(moved=False, detail="already-resident")
            log_access(session, citizen=person.id, agency=RESIDENCE, purpose="register a move to another household",
                       workflow_id=inp.workflow_id, fields="household, address, residence period")
            if current is not None:
                current.valid_to, current.ended_by = change.moved_on, "move"
            session.add(ResidencePeriod(person_id=person.id, household_id=change.household_id,
                                        valid_from=change.moved_on, started_by="move", workflow_id=inp.workflow_id))
            person.household_id = change.household_id
            return MoveOutcome(moved=True, newly_moved=True, detail="moved")

    async def move_school_forecast(self, inp: ChangeRef) -> ChangeStep:
        """Education: a child in the grade-1 forecast is counted in the ward of the new household."""
        async with self.registry.unit_of_work() as session:
            change = await _change(session, inp)
            forecast = await session.get(SchoolEntryForecast, inp.person_id, with_for_update=True)
            if forecast is None:
                return ChangeStep(done=False, detail="not in the school-entry forecast")
            _, address = await household_address(session, change.household_id)
            if address is None:
                raise ApplicationError("household address missing", type="NotReady")
            if (forecast.province_code, forecast.ward_code) == (address.province_code, address.ward_code):
                return ChangeStep(done=True, detail="forecast already in the new ward")
            log_access(session, citizen=inp.person_id, agency=EDUCATION, purpose="school-entry forecast: new ward",
                       workflow_id=inp.workflow_id, fields="address (province, ward)")
            forecast.province_code, forecast.ward_code = address.province_code, address.ward_code
            return ChangeStep(done=True, detail=f"forecast moved to province {address.province_code}")

    async def notify_residence_changed(self, inp: ChangeRef) -> NoticeOutcome:
        """Notification: the family is told once (`<workflow id>/residence_changed`)."""
        async def build(session: AsyncSession, citizen: Person) -> dict[str, Any]:
            change = await _change(session, inp)
            household, address = await household_address(session, change.household_id)
            return {"child_name": citizen.full_name, "moved_on": change.moved_on,
                    "household_number": household.household_number if household else None,
                    "address": (f"{address.street}, {address.ward_name}, {address.district}, "
                                f"{rules.province_name(address.province_code)}") if address else None}

        return await self.notices.deliver(f"{inp.workflow_id}/{MOVE_NOTICE}", inp.person_id, MOVE_NOTICE,
                                          inp.workflow_id, build)
