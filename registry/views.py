"""Read models for the CLI: a birth's status and a family's inbox (each read written to the access log)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

import rules
from activities.common import log_access
from registry.births import registrations_numbered
from registry.models import (
    Address,
    BirthRegistration,
    HealthInsuranceCard,
    Household,
    IdentityNumber,
    InboxMessage,
    Notification,
    Person,
    PlannedVaccination,
    ResidencePeriod,
    ResidenceRegistration,
    SchoolEntryForecast,
)
from workflows.contracts import Stage


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def birth_status(session: AsyncSession, registration_number: str, *, reader: str,
                       province_code: str | None = None) -> dict[str, Any] | None:
    """The registration's status (None unless exactly one registration has the number in the province given)."""
    regs = await registrations_numbered(session, registration_number, province_code)
    if len(regs) != 1:
        return None
    reg = regs[0]
    out: dict[str, Any] = {"registration_number": reg.registration_number, "province_code": reg.province_code,
                           "workflow_id": reg.workflow_id,
                           "registered_at": _iso(reg.registered_at), "received_at": _iso(reg.received_at)}
    times: dict[str, Any] = {Stage.BIRTH_RECORDED: reg.recorded_at}
    child = await session.get(Person, reg.child_person_id) if reg.child_person_id else None
    if child is not None:
        log_access(session, citizen=child.id, agency=reader, purpose="birth status", workflow_id=None,
                   fields="full_name,sex,date_of_birth,personal_id_number,card,residence,vaccination_plan")
        first_id = await session.scalar(select(IdentityNumber).where(IdentityNumber.person_id == child.id)
                                        .order_by(IdentityNumber.assigned_at).limit(1))
        times[Stage.PERSONAL_ID_ASSIGNED] = first_id.assigned_at if first_id else None
        out["child"] = {"full_name": child.full_name, "sex": child.sex, "date_of_birth": _iso(child.date_of_birth),
                        "personal_id_number": child.personal_id_number, "status": child.status,
                        "date_of_death": _iso(child.date_of_death)}
        card = await session.scalar(select(HealthInsuranceCard).where(HealthInsuranceCard.person_id == child.id))
        times[Stage.HEALTH_INSURANCE_ISSUED] = card.issued_at if card else None
        out["health_insurance"] = ({"card_number": card.card_number, "valid_from": _iso(card.valid_from),
                                    "valid_until": _iso(card.valid_until)} if card else None)
        residence = await session.get(ResidenceRegistration, child.id)
        times[Stage.RESIDENCE_REGISTERED] = residence.registered_at if residence else None
        out["residence"] = None
        current = await session.scalar(select(ResidencePeriod).where(  # where the child lives now (after moves)
            ResidencePeriod.person_id == child.id, ResidencePeriod.valid_to.is_(None)))
        if residence and current:
            household = await session.get(Household, current.household_id)
            address = await session.get(Address, household.address_id) if household else None
            out["residence"] = {
                "household_number": household.household_number if household else None,
                "basis": residence.basis if current.started_by != "move" else "move", "since": _iso(current.valid_from),
                "address": (f"{address.street}, {address.ward_name}, {address.district}, "
                            f"{rules.province_name(address.province_code)}") if address else None}
        doses = (await session.scalars(select(PlannedVaccination).where(PlannedVaccination.person_id == child.id)
                                       .order_by(PlannedVaccination.due_date, PlannedVaccination.vaccine,
                                                 PlannedVaccination.dose))).all()
        times[Stage.VACCINATION_PLANNED] = min((d.planned_at for d in doses), default=None)
        out["vaccination_plan"] = [{"vaccine": d.vaccine, "dose": d.dose, "due_date": _iso(d.due_date),
                                    "due_by": _iso(d.due_by), "status": d.status} for d in doses]
        forecast = await session.get(SchoolEntryForecast, child.id)
        times[Stage.SCHOOL_FORECAST_ADDED] = forecast.added_at if forecast else None
        out["school"] = ({"entry_year": forecast.entry_year, "ward_code": forecast.ward_code}
                         if forecast else None)
        noticed = dict((await session.execute(
            select(Notification.stage, Notification.created_at).where(Notification.citizen_person_id == child.id)
        )).all())
    else:
        noticed = {}
    out["stages"] = [{"stage": s.value, "state": "done" if times.get(s) else "pending", "at": _iso(times.get(s)),
                      "family_notified_at": _iso(noticed.get(s.value))} for s in Stage]
    return out


async def family_inbox(session: AsyncSession, id_number: str, *, reader: str) -> list[dict[str, Any]] | None:
    """Notices about the citizen with this ID number, or sent to them as a parent; oldest first."""
    person = await session.scalar(select(Person).where(Person.personal_id_number == id_number))
    if person is None:
        return None
    log_access(session, citizen=person.id, agency=reader, purpose="read inbox", workflow_id=None,
               fields="notices")
    citizen = aliased(Person)
    rows = (await session.execute(
        select(Notification, InboxMessage, citizen.personal_id_number)
        .join(InboxMessage, InboxMessage.notification_id == Notification.id)
        .join(citizen, citizen.id == Notification.citizen_person_id)
        .where(or_(Notification.citizen_person_id == person.id, InboxMessage.recipient_person_id == person.id))
        .order_by(InboxMessage.delivered_at, InboxMessage.id))).all()
    out: dict[Any, dict[str, Any]] = {}
    for n, message, about in rows:  # a notice about this citizen reached each parent: list it once
        entry = out.setdefault(n.id, {
            "delivered_at": _iso(message.delivered_at), "about_id_number": about, "stage": n.stage,
            "language": n.language, "subject": n.subject, "body": n.body, "recipients": []})
        entry["recipients"].append({"role": message.recipient_role, "channel": message.channel})
    return list(out.values())


async def count_notices(session: AsyncSession, registration_numbers: list[str]) -> dict[str, int]:
    rows = (await session.execute(
        select(BirthRegistration.registration_number, func.count(Notification.id))
        .join(Notification, Notification.citizen_person_id == BirthRegistration.child_person_id)
        .where(BirthRegistration.registration_number.in_(registration_numbers))
        .group_by(BirthRegistration.registration_number))).all()
    return {reg: int(n) for reg, n in rows}
