"""What each agency does when a birth registration is corrected (the child's full name, date of birth, sex).

- civil status: the person record takes the corrected values; the correction keeps them before and after;
- identity: a corrected sex or birth year changes the personal ID number's prefix (Decree 137/2015 Art. 13), so a
  new number is issued (Circular 59/2021); the old one stays `cancelled`, linked to the new one (`replaced_by`),
  and is never allocated again (it keeps its row, and the number is the table's key);
- a corrected date of birth: the doses not given yet are re-planned as of the registration day, the under-6 card's
  validity (and eligibility) and the school-entry year are recomputed; the card number follows the ID number;
- notification: the family is told once what changed (and the new ID number).

Every step reads the stored correction (`birth_corrections`) and the registry, and is idempotent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.exceptions import ApplicationError

import rules
from activities.common import log_access, registered_on, require_child
from activities.insurance import CHILD_SCHEME, card_number_for
from activities.moves import household_address
from activities.notification import RegistryNotificationAgency
from registry.db import Registry
from registry.models import (
    BirthCorrection,
    HealthInsuranceCard,
    IdentityNumber,
    Person,
    PlannedVaccination,
    SchoolEntryForecast,
)
from workflows.change_contracts import ChangeRef, ChangeStep, CorrectionApplied, CorrectionNoticeInput, IdReissued
from workflows.contracts import NoticeOutcome

CIVIL, IDENTITY, HEALTH, INSURANCE, EDUCATION = "civil-status", "identity", "health", "health-insurance", "education"
CORRECTABLE = ("full_name", "date_of_birth", "sex")
CORRECTION_NOTICE = "birth_corrected"
MAX_DRAWS = 100


async def _correction(session: AsyncSession, inp: ChangeRef, *, lock: bool = False) -> BirthCorrection:
    corr = await session.get(BirthCorrection, inp.change_id, with_for_update=lock)
    if corr is None or corr.person_id != inp.person_id:
        raise ApplicationError("birth correction is not in the registry", type="ChangeMissing", non_retryable=True)
    return corr


def _as_json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


class RegistryCorrectionAgencies:
    def __init__(self, registry: Registry, notices: RegistryNotificationAgency,
                 draw: Callable[[], int] | None = None) -> None:
        self.registry = registry
        self.notices = notices
        self._draw: Callable[[], int] = draw or (lambda: secrets.randbelow(1_000_000))

    async def apply_birth_correction(self, inp: ChangeRef) -> CorrectionApplied:
        """Civil status: the person record takes the corrected values, once; before/after kept on the correction."""
        async with self.registry.unit_of_work() as session:
            corr = await _correction(session, inp, lock=True)
            if corr.applied_at is not None:
                return CorrectionApplied(changed=[n for n in CORRECTABLE if n in (corr.after or {})])
            person = await session.get(Person, inp.person_id, with_for_update=True)
            if person is None:
                raise ApplicationError("person record missing", type="PersonMissing", non_retryable=True)
            log_access(session, citizen=person.id, agency=CIVIL, purpose="correct the birth record",
                       workflow_id=inp.workflow_id, fields="name, sex, date of birth (before and after)")
            before: dict[str, Any] = {}
            after: dict[str, Any] = {}
            for name in CORRECTABLE:
                if name in corr.requested and _as_json(getattr(person, name)) != corr.requested[name]:
                    before[name], after[name] = _as_json(getattr(person, name)), corr.requested[name]
                    value = corr.requested[name]
                    setattr(person, name, date.fromisoformat(str(value)) if name == "date_of_birth" else value)
            corr.before, corr.after, corr.applied_at = before, after, datetime.now(UTC)
            return CorrectionApplied(changed=[n for n in CORRECTABLE if n in after], newly_applied=True)

    async def reissue_personal_id(self, inp: ChangeRef) -> IdReissued:
        """Identity: a new number when the prefix (sex, birth year) changed; the old one cancelled and linked."""
        async with self.registry.unit_of_work() as session:
            if await session.scalar(select(IdentityNumber.number).where(
                    IdentityNumber.person_id == inp.person_id, IdentityNumber.cancelled_by == inp.workflow_id)):
                return IdReissued(reissued=True, detail="re-issued (earlier attempt)")
            current = await session.scalar(select(IdentityNumber).where(
                IdentityNumber.person_id == inp.person_id, IdentityNumber.status == "active").with_for_update())
            if current is None:
                return IdReissued(reissued=False, detail="no number yet: it will carry the corrected values")
            person = await require_child(session, inp.person_id)
            prefix = rules.personal_id_prefix(current.number[:3], person.sex, person.date_of_birth)  # type: ignore[arg-type]
            if current.number.startswith(prefix):
                return IdReissued(reissued=False, detail="prefix unchanged: the number stays")
            log_access(session, citizen=person.id, agency=IDENTITY, purpose="re-issue the ID number (corrected "
                       "sex or birth year)", workflow_id=inp.workflow_id,
                       fields="ID number, sex, date of birth")
            old, registration_number = current.number, current.registration_number
            await session.execute(update(IdentityNumber).where(IdentityNumber.number == old).values(
                status="cancelled", cancelled_at=datetime.now(UTC), cancelled_by=inp.workflow_id))
            for _ in range(MAX_DRAWS):
                number = rules.compose_personal_id(prefix, self._draw())
                if await session.scalar(select(Person.id).where(Person.personal_id_number == number)):
                    continue
                inserted = await session.scalar(
                    insert(IdentityNumber)
                    .values(number=number, person_id=person.id, registration_number=registration_number)
                    .on_conflict_do_nothing().returning(IdentityNumber.number))
                if inserted:  # any number ever issued (a cancelled one too) has its row: it is drawn again
                    await session.execute(update(IdentityNumber).where(IdentityNumber.number == old)
                                          .values(replaced_by=number))
                    await session.execute(update(Person).where(Person.id == person.id)
                                          .values(personal_id_number=number))
                    return IdReissued(reissued=True, detail="new number issued, the old one cancelled")
        raise ApplicationError(f"no free ID number after {MAX_DRAWS} draws", type="IdSpaceExhausted")

    async def replan_vaccinations(self, inp: ChangeRef) -> ChangeStep:
        """Health: the doses not given yet get the dates of a plan for the corrected date of birth, made as of the
        registration day; doses given stay as reported."""
        async with self.registry.unit_of_work() as session:
            child = await require_child(session, inp.person_id)
            log_access(session, citizen=child.id, agency=HEALTH, purpose="re-plan immunization (corrected date of "
                       "birth)", workflow_id=inp.workflow_id,
                       fields="date of birth, vaccination plan")
            rows = {(r.vaccine, r.dose): r for r in (await session.scalars(
                select(PlannedVaccination).where(PlannedVaccination.person_id == child.id).with_for_update())).all()}
            given = {k: r.administered_on for k, r in rows.items() if r.administered_on is not None}
            plan = {(d.vaccine, d.dose): d for d in rules.vaccination_plan(
                child.date_of_birth, as_of=await registered_on(session, child.id), administered=given)}
            changed = 0
            for key, row in rows.items():
                if row.administered_on is not None:
                    continue
                dose = plan.get(key)
                if dose is None:
                    await session.delete(row)
                    changed += 1
                elif (row.due_date, row.due_by, row.nominal_due_date, row.overdue_at_planning, row.flag) != (
                        dose.due_date, dose.due_by, dose.nominal_due_date, dose.overdue, dose.flag):
                    row.due_date, row.due_by, row.nominal_due_date = dose.due_date, dose.due_by, dose.nominal_due_date
                    row.overdue_at_planning, row.flag = dose.overdue, dose.flag
                    changed += 1
            for key, dose in plan.items():
                if key not in rows:
                    session.add(PlannedVaccination(person_id=child.id, vaccine=dose.vaccine, dose=dose.dose,
                                                   due_date=dose.due_date, due_by=dose.due_by, status="planned",
                                                   nominal_due_date=dose.nominal_due_date,
                                                   overdue_at_planning=dose.overdue, flag=dose.flag))
                    changed += 1
            return ChangeStep(done=changed > 0, detail=f"{changed} dose(s) re-planned")

    async def update_child_card(self, inp: ChangeRef) -> ChangeStep:
        """Health insurance: validity (and eligibility) from the corrected date of birth; the card number follows
        the current ID number."""
        async with self.registry.unit_of_work() as session:
            child = await require_child(session, inp.person_id)
            card = await session.scalar(select(HealthInsuranceCard)
                                        .where(HealthInsuranceCard.person_id == child.id).with_for_update())
            log_access(session, citizen=child.id, agency=INSURANCE, purpose="update the under-6 card after a birth "
                       "correction", workflow_id=inp.workflow_id,
                       fields="date of birth, health-insurance card")
            eligible = rules.child_card_eligible(child.date_of_birth, await registered_on(session, child.id))
            if card is None:
                if not eligible or child.personal_id_number is None:
                    return ChangeStep(done=False, detail="no card")
                valid_from, valid_until = rules.health_insurance_validity(child.date_of_birth)
                await session.execute(insert(HealthInsuranceCard).values(
                    card_number=card_number_for(child.personal_id_number), person_id=child.id, scheme=CHILD_SCHEME,
                    valid_from=valid_from, valid_until=valid_until).on_conflict_do_nothing())
                return ChangeStep(done=True, detail="card issued (eligible after the correction)")
            values: dict[str, Any] = {}
            if card.closed_on is None and not eligible:
                values.update(closed_on=rules.local_date(datetime.now(UTC)), closed_reason="birth-date-corrected")
            elif card.closed_on is None:
                valid_from, valid_until = rules.health_insurance_validity(child.date_of_birth)
                if (card.valid_from, card.valid_until) != (valid_from, valid_until):
                    values.update(valid_from=valid_from, valid_until=valid_until)
            if child.personal_id_number and card.card_number != card_number_for(child.personal_id_number):
                values["card_number"] = card_number_for(child.personal_id_number)
            if not values:
                return ChangeStep(done=False, detail="card unchanged")
            await session.execute(update(HealthInsuranceCard)
                                  .where(HealthInsuranceCard.card_number == card.card_number).values(**values))
            return ChangeStep(done=True, detail="card updated: " + ", ".join(sorted(values)))

    async def recompute_school_entry(self, inp: ChangeRef) -> ChangeStep:
        """Education: the entry year from the corrected date of birth (out of the forecast if that year began
        before the registration; into it if the child now qualifies and has a residence)."""
        async with self.registry.unit_of_work() as session:
            child = await require_child(session, inp.person_id)
            forecast = await session.get(SchoolEntryForecast, child.id, with_for_update=True)
            log_access(session, citizen=child.id, agency=EDUCATION, purpose="school-entry year after a birth "
                       "correction", workflow_id=inp.workflow_id,
                       fields="date of birth, school-entry forecast")
            if rules.school_entry_passed(child.date_of_birth, await registered_on(session, child.id)):
                if forecast is None:
                    return ChangeStep(done=False, detail="not in the forecast")
                await session.execute(delete(SchoolEntryForecast).where(SchoolEntryForecast.person_id == child.id))
                return ChangeStep(done=True, detail="removed: the grade-1 year had begun at registration")
            year = rules.school_entry_year(child.date_of_birth)
            if forecast is not None:
                if forecast.entry_year == year:
                    return ChangeStep(done=False, detail="entry year unchanged")
                forecast.entry_year = year
                return ChangeStep(done=True, detail=f"entry year {year}")
            _, address = await household_address(session, child.household_id)
            if address is None:
                return ChangeStep(done=False, detail="no residence yet: the birth's forecast step adds it")
            await session.execute(insert(SchoolEntryForecast).values(
                person_id=child.id, province_code=address.province_code, ward_code=address.ward_code,
                entry_year=year).on_conflict_do_nothing())
            return ChangeStep(done=True, detail=f"added, entry year {year}")

    async def notify_birth_corrected(self, inp: CorrectionNoticeInput) -> NoticeOutcome:
        """Notification: the family is told once what changed (`<workflow id>/birth_corrected`)."""
        async def build(session: AsyncSession, citizen: Person) -> dict[str, Any]:
            corr = await _correction(session, inp)
            after = dict(corr.after or {})
            if "date_of_birth" in after:
                after["date_of_birth"] = date.fromisoformat(str(after["date_of_birth"]))
            return {"child_name": citizen.full_name, "changed": after,
                    "new_personal_id_number": citizen.personal_id_number if inp.id_reissued else None}

        return await self.notices.deliver(f"{inp.workflow_id}/{CORRECTION_NOTICE}", inp.person_id,
                                          CORRECTION_NOTICE, inp.workflow_id, build)
