"""The citizen's lifecycle agency: what is due for a citizen over the years, and acting on one due item.

The agenda is computed from what the registry holds now (date of birth, vaccination plan, card, school
forecast) by the rules in :mod:`rules.lifecycle`; acting on an item re-checks the registry first (a dose that
was given or re-planned is not reminded) and then notifies every recipient once (dedupe key
`<workflow id>/<item key>`). An overdue dose also becomes a task for the health station of the child's
residence, kept in `health_station_tasks` and announced on NATS.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

import rules
from activities.common import require_child
from activities.notification import RegistryNotificationAgency
from registry.db import Registry
from registry.models import (
    Address,
    HealthInsuranceCard,
    HealthStationTask,
    Household,
    Person,
    PlannedVaccination,
    SchoolEntryForecast,
)
from workflows.contracts import ActionOutcome, Agenda, AgendaAction, AgendaItem, AgendaRequest

AGENCY = "lifecycle"
HEALTH_TASK_SUBJECT = "notify.health-station"


class LifecycleAgency(Protocol):
    async def load_agenda(self, inp: AgendaRequest) -> Agenda: ...

    async def act_on_agenda_item(self, inp: AgendaAction) -> ActionOutcome: ...


class TaskGateway(Protocol):
    async def publish_task(self, task: HealthStationTask) -> None: ...


_AGENDA_FACTS = (
    select(Person.date_of_birth, Person.status, HealthInsuranceCard.valid_until.label("card_valid_until"),
           SchoolEntryForecast.entry_year)
    .outerjoin(HealthInsuranceCard, HealthInsuranceCard.person_id == Person.id)  # at most one card per person
    .outerjoin(SchoolEntryForecast, SchoolEntryForecast.person_id == Person.id)
    .where(Person.id == bindparam("person")))
"""What the agenda is computed from besides the doses, in one round trip (built once)."""
_DOSES_OF = (select(PlannedVaccination.vaccine, PlannedVaccination.dose, PlannedVaccination.due_date,
                    PlannedVaccination.administered_on, PlannedVaccination.overdue_at_planning)
             .where(PlannedVaccination.person_id == bindparam("person")))


def build_agenda(facts: rules.CitizenFacts, as_of: date | None, now: datetime) -> Agenda:
    """The agenda from ``as_of`` (default: today) with the time to act on each item and the stage's end."""
    today = rules.local_date(now)
    stage, ends = rules.life_stage(facts.date_of_birth, today)
    items = [AgendaItem(key=i.key, kind=i.kind, on=i.on, at=rules.notice_time(i.on), summary=i.summary,
                        doses=[f"{v}.{n}" for v, n in i.doses], about=i.about)
             for i in rules.citizen_agenda(facts, as_of or today)]
    return Agenda(items=items, stage=stage, stage_ends_at=rules.notice_time(ends) if ends else None, today=today)


def dose_codes(item: AgendaItem) -> list[tuple[str, int]]:
    return [(code.rpartition(".")[0], int(code.rpartition(".")[2])) for code in item.doses]


def identity_context(item: AgendaItem, date_of_birth: date) -> dict[str, Any]:
    birthday = item.about or date_of_birth
    return {"birthday": birthday, "age": birthday.year - date_of_birth.year}


class NatsTaskGateway:
    def __init__(self, jetstream: Any) -> None:
        self.js = jetstream

    async def publish_task(self, task: HealthStationTask) -> None:
        body = json.dumps({"task_id": str(task.id), "kind": task.kind, "citizen": str(task.person_id),
                           "vaccine": task.vaccine, "dose": task.dose, "due_date": task.due_date.isoformat(),
                           "ward_code": task.ward_code}).encode()
        await self.js.publish(f"{HEALTH_TASK_SUBJECT}.{task.province_code or 'unknown'}", body,
                              headers={"Nats-Msg-Id": task.dedupe_key})


class RegistryLifecycleAgency:
    def __init__(self, registry: Registry, notices: RegistryNotificationAgency, tasks: TaskGateway) -> None:
        self.registry = registry
        self.notices = notices
        self.tasks = tasks

    async def load_agenda(self, inp: AgendaRequest) -> Agenda:
        async with self.registry.unit_of_work() as session:
            person = (await session.execute(_AGENDA_FACTS, {"person": inp.person_id})).first()
            if person is None:
                await require_child(session, inp.person_id)  # raises: the record is missing
            assert person is not None
            doses = (await session.execute(_DOSES_OF, {"person": inp.person_id})).all()
            facts = rules.CitizenFacts(
                date_of_birth=person.date_of_birth,
                doses=tuple(rules.DoseFact(d.vaccine, d.dose, d.due_date, d.administered_on, d.overdue_at_planning)
                            for d in doses),
                card_valid_until=person.card_valid_until, school_entry_year=person.entry_year)
        agenda = build_agenda(facts, inp.as_of, inp.now)
        return agenda.model_copy(update={"deceased": True, "items": []}) if person.status == "deceased" else agenda

    async def act_on_agenda_item(self, inp: AgendaAction) -> ActionOutcome:
        item = inp.item
        context: dict[str, Any] = {}
        async with self.registry.unit_of_work() as session:
            person = await require_child(session, inp.person_id)
            if person.status == "deceased":
                return ActionOutcome(done=False, detail="the citizen's death is recorded: nothing is sent")
            still = await self._still_due(session, person, item, context)
        if not still:
            return ActionOutcome(done=False, detail="no longer due (given, re-planned or changed)")

        async def build(session: AsyncSession, citizen: Person) -> dict[str, Any]:
            return {"child_name": citizen.full_name, "date_of_birth": citizen.date_of_birth,
                    "ward_name": await _ward_name(session, citizen), "due_date": item.about,
                    "days_before": rules.lifecycle_policy().dose_reminder_days_before, **context}

        outcome = await self.notices.deliver(f"{inp.workflow_id}/{item.key}", inp.person_id, item.kind,
                                             inp.workflow_id, build, on=item.on)
        detail = None
        if item.kind == "dose_overdue":
            detail = f"{await self._escalate(inp)} task(s) for the health station"
        return ActionOutcome(done=True, detail=detail or ("notified" if outcome.newly_created else "already notified"))

    async def _still_due(self, session: AsyncSession, person: Person, item: AgendaItem,
                         context: dict[str, Any]) -> bool:
        """Re-check the registry, and gather what the notice says."""
        lang = person.preferred_language
        if item.doses:
            names = rules.vaccine_names()
            rows = {(r.vaccine, r.dose): r for r in (await session.scalars(
                select(PlannedVaccination).where(PlannedVaccination.person_id == person.id))).all()}
            pending = [(v, n) for v, n in dose_codes(item)
                       if (row := rows.get((v, n))) is not None and row.administered_on is None
                       and row.due_date == item.about]
            context["doses"] = [{"name": names.get(v, {}).get(lang, v), "dose": n} for v, n in pending]
            return bool(pending)
        if item.kind == "insurance_ending":
            card = await session.scalar(select(HealthInsuranceCard)
                                        .where(HealthInsuranceCard.person_id == person.id))
            if card is None or card.valid_until != item.about:
                return False
            context.update(card_number=card.card_number, valid_until=card.valid_until)
            return True
        if item.kind == "school_enrolment":
            forecast = await session.get(SchoolEntryForecast, person.id)
            if forecast is None:
                return False
            context["entry_year"] = forecast.entry_year
            return True
        context.update(identity_context(item, person.date_of_birth))
        return True

    async def _escalate(self, inp: AgendaAction) -> int:
        """One task per overdue dose for the health station of the child's residence, once."""
        async with self.registry.unit_of_work() as session:
            person = await require_child(session, inp.person_id)
            address = await _address(session, person)
            for vaccine, dose in dose_codes(inp.item):
                await session.execute(insert(HealthStationTask).values(
                    id=uuid.uuid4(), dedupe_key=f"{inp.workflow_id}/{inp.item.key}/{vaccine}.{dose}",
                    person_id=person.id, province_code=address.province_code if address else None,
                    ward_code=address.ward_code if address else None, kind="overdue-dose", vaccine=vaccine,
                    dose=dose, due_date=inp.item.about or inp.item.on).on_conflict_do_nothing())
            tasks = (await session.scalars(select(HealthStationTask).where(
                HealthStationTask.dedupe_key.startswith(f"{inp.workflow_id}/{inp.item.key}/")))).all()
        for task in tasks:
            if task.published_at is None:
                await self.tasks.publish_task(task)
                async with self.registry.unit_of_work() as session:
                    await session.execute(update(HealthStationTask).where(HealthStationTask.id == task.id)
                                          .values(published_at=datetime.now(UTC)))
        return len(tasks)


async def _address(session: AsyncSession, person: Person) -> Address | None:
    household = await session.get(Household, person.household_id) if person.household_id else None
    return await session.get(Address, household.address_id) if household else None


async def _ward_name(session: AsyncSession, person: Person) -> str | None:
    address = await _address(session, person)
    return address.ward_name if address else None
