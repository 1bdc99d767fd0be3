"""What each agency does when a death is registered (Decree 63/2024, group 2: death registration → residence
deregistration → funeral allowance), plus the health-insurance card and the family's notice.

Each step reads the death registration the bridge stored and is idempotent: a retry, or a death recorded twice,
changes nothing more. Recording the death takes the person's row lock, so a notice being sent at that moment
either finishes first or sees the death (activities/notification.py).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.exceptions import ApplicationError

from activities.common import log_access, require_child
from activities.notification import RegistryNotificationAgency
from registry.db import Registry
from registry.models import DeathRegistration, FuneralAllowance, HealthInsuranceCard, Person, ResidencePeriod
from workflows.contracts import DeathStep, DeathStepDone

AGENCY = "civil-status"
DEATH_NOTICE = "death_registered"


async def _registration(session: AsyncSession, person_id: uuid.UUID) -> DeathRegistration:
    reg = await session.scalar(select(DeathRegistration).where(DeathRegistration.person_id == person_id))
    if reg is None:
        raise ApplicationError("death registration is not in the registry", type="RegistrationMissing",
                               non_retryable=True)
    return reg


class RegistryDeathAgencies:
    def __init__(self, registry: Registry, notices: RegistryNotificationAgency) -> None:
        self.registry = registry
        self.notices = notices

    async def record_death(self, inp: DeathStep) -> DeathStepDone:
        """Civil status: the person is deceased from now on (nothing but the death notice is sent about them)."""
        async with self.registry.unit_of_work() as session:
            reg = await _registration(session, inp.person_id)
            person = await session.get(Person, inp.person_id, with_for_update=True)
            if person is None:
                raise ApplicationError("person record missing", type="PersonMissing", non_retryable=True)
            if person.status == "deceased":
                return DeathStepDone(newly_done=False, detail="death already recorded")
            log_access(session, citizen=person.id, agency=AGENCY, purpose="record a death", workflow_id=inp.workflow_id,
                       fields="status, date of death")
            person.status, person.date_of_death = "deceased", reg.date_of_death
            return DeathStepDone(newly_done=True, detail="death recorded")

    async def deregister_residence(self, inp: DeathStep) -> DeathStepDone:
        """Residence: the open residence period ends on the day of death."""
        async with self.registry.unit_of_work() as session:
            reg = await _registration(session, inp.person_id)
            person = await require_child(session, inp.person_id)
            period = await session.scalar(select(ResidencePeriod).where(
                ResidencePeriod.person_id == person.id, ResidencePeriod.valid_to.is_(None)).with_for_update())
            if period is None and person.household_id is None:
                return DeathStepDone(newly_done=False, detail="no residence registered")
            log_access(session, citizen=person.id, agency="residence", purpose="deregister residence after death",
                       workflow_id=inp.workflow_id, fields="residence period, date of death")
            if period is not None:
                period.valid_to, period.ended_by = max(reg.date_of_death, period.valid_from), "death"
            person.household_id = None
            return DeathStepDone(newly_done=True, detail="residence deregistered")

    async def close_health_insurance_card(self, inp: DeathStep) -> DeathStepDone:
        async with self.registry.unit_of_work() as session:
            reg = await _registration(session, inp.person_id)
            card = await session.scalar(select(HealthInsuranceCard).where(
                HealthInsuranceCard.person_id == inp.person_id).with_for_update())
            if card is None:
                return DeathStepDone(newly_done=False, detail="no health-insurance card")
            if card.closed_on is not None:
                return DeathStepDone(newly_done=False, detail="card already closed")
            log_access(session, citizen=inp.person_id, agency="health-insurance", purpose="close card after death",
                       workflow_id=inp.workflow_id, fields="health-insurance card, date of death")
            card.closed_on, card.closed_reason = min(reg.date_of_death, card.valid_until), "death"
            return DeathStepDone(newly_done=True, detail="card closed")

    async def record_funeral_allowance(self, inp: DeathStep) -> DeathStepDone:
        """Social welfare: the funeral allowance for the declarant, once per death."""
        async with self.registry.unit_of_work() as session:
            reg = await _registration(session, inp.person_id)
            result = await session.execute(insert(FuneralAllowance).values(
                id=uuid.uuid4(), deceased_person_id=inp.person_id, declarant_person_id=reg.declarant_person_id,
                workflow_id=inp.workflow_id).on_conflict_do_nothing(index_elements=["deceased_person_id"]))
            newly = bool(result.rowcount)  # type: ignore[attr-defined]
            if newly:
                log_access(session, citizen=inp.person_id, agency="social-welfare",
                           purpose="record funeral allowance for the declarant", workflow_id=inp.workflow_id,
                           fields="declarant, date of death")
            return DeathStepDone(newly_done=newly, detail="funeral allowance recorded" if newly
                                 else "funeral allowance already recorded")

    async def notify_death(self, inp: DeathStep) -> DeathStepDone:
        """The family (living parents on record, the declarant) is told once."""
        async with self.registry.unit_of_work() as session:
            reg = await _registration(session, inp.person_id)
            declarant_id = reg.declarant_person_id
            date_of_death: date = reg.date_of_death

        async def context(session: AsyncSession, person: Person) -> dict[str, Any]:
            allowance = await session.scalar(select(FuneralAllowance.id).where(
                FuneralAllowance.deceased_person_id == person.id))
            card = await session.scalar(select(HealthInsuranceCard.card_number).where(
                HealthInsuranceCard.person_id == person.id, HealthInsuranceCard.closed_on.is_not(None)))
            period = await session.scalar(select(ResidencePeriod.id).where(
                ResidencePeriod.person_id == person.id, ResidencePeriod.ended_by == "death"))
            return {"child_name": person.full_name, "date_of_death": date_of_death,
                    "allowance_recorded": allowance is not None, "card_closed": card is not None,
                    "residence_deregistered": period is not None}

        outcome = await self.notices.deliver(f"{inp.workflow_id}/{DEATH_NOTICE}", inp.person_id, DEATH_NOTICE,
                                             inp.workflow_id, context, declarant_id=declarant_id)
        return DeathStepDone(newly_done=outcome.newly_created,
                             detail="family notified" if outcome.newly_created else "family already notified")
