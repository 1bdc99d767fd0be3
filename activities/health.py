"""Health agency: the child's immunization plan from the schedule data file, and the doses the health station
reports as given.

The plan is made from the child's age on the day the birth was registered: for a late registration it is a
catch-up plan (doses whose due age has passed are due at once, later doses keep their minimum intervals).
A reported dose fixes its date; the later doses of the same vaccine are re-planned from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from temporalio.exceptions import ApplicationError

import rules
from activities.common import WRITTEN_PLAN, log_access, registered_on, require_child
from registry.db import Registry, table_of, transaction_memo
from registry.models import PlannedVaccination, VaccinationReport
from workflows.contracts import ActionOutcome, ChildRef, DoseApplication, StepDone

AGENCY = "health"
BEYOND_PROGRAMME = "no plan: the child was past the childhood immunization programme's age when registered"


_INSERT_PLAN = (insert(table_of(PlannedVaccination)).on_conflict_do_nothing()
                .returning(PlannedVaccination.vaccine, PlannedVaccination.dose, PlannedVaccination.due_date,
                           PlannedVaccination.overdue_at_planning, PlannedVaccination.flag))
"""Core, not ORM: the ORM's bulk-insert bookkeeping over the ~19 rows of a plan cost more than the statement.
Executed with the rows as parameters (one statement, sent as a multi-row VALUES by SQLAlchemy's insertmanyvalues),
not `.values(rows)`, whose SQL is compiled anew for every plan."""
_PLANNED_COUNT = (select(func.count()).select_from(PlannedVaccination)
                  .where(PlannedVaccination.person_id == bindparam("person")))


class HealthAgency(Protocol):
    async def plan_vaccinations(self, inp: ChildRef) -> StepDone: ...

    async def apply_dose_report(self, inp: DoseApplication) -> ActionOutcome: ...


class RegistryHealthAgency:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def plan_vaccinations(self, inp: ChildRef) -> StepDone:
        async with self.registry.unit_of_work() as session:
            child = await require_child(session, inp.child_person_id)
            log_access(session, citizen=child.id, agency=AGENCY, purpose="plan immunization from date of birth",
                       workflow_id=inp.workflow_id, fields="date_of_birth")
            plan = rules.vaccination_plan(child.date_of_birth, as_of=await registered_on(session, child.id))
            if not plan:
                return StepDone(newly_done=False, applicable=False, basis=BEYOND_PROGRAMME)
            rows = [dict(person_id=child.id, vaccine=d.vaccine, dose=d.dose, due_date=d.due_date, due_by=d.due_by,
                         nominal_due_date=d.nominal_due_date, overdue_at_planning=d.overdue, flag=d.flag)
                    for d in plan]
            inserted = (await session.execute(_INSERT_PLAN, rows)).all()
            if len(inserted) == len(rows):  # the whole plan is this attempt's: the notice tells it from these
                transaction_memo(session, WRITTEN_PLAN)[child.id] = sorted(
                    inserted, key=lambda d: (d.due_date, d.vaccine, d.dose))
                total: int | None = len(rows)
            else:
                total = await session.scalar(_PLANNED_COUNT, {"person": child.id})
            overdue = sum(d.overdue for d in plan)
            basis = f"catch-up plan: {overdue} dose(s) overdue, due now" if overdue else None
            return StepDone(newly_done=bool(inserted), count=int(total or 0), basis=basis)

    async def apply_dose_report(self, inp: DoseApplication) -> ActionOutcome:
        """Record a reported dose once and re-plan the later doses of that vaccine by the minimum intervals."""
        async with self.registry.unit_of_work() as session:
            report = await session.get(VaccinationReport, inp.report_id, with_for_update=True)
            if report is None or report.person_id != inp.person_id:
                raise ApplicationError("dose report not found for this citizen", type="ReportMissing",
                                       non_retryable=True)
            if report.applied_at is not None:
                return ActionOutcome(done=False, detail="report already applied")
            report.applied_at = datetime.now(UTC)
            child = await require_child(session, inp.person_id)
            log_access(session, citizen=child.id, agency=AGENCY,
                       purpose=f"record a dose given, re-plan the next ones (report {report.id})",
                       workflow_id=inp.workflow_id, fields="vaccination_plan,date_of_birth")
            rows = {(r.vaccine, r.dose): r for r in (await session.scalars(
                select(PlannedVaccination).where(PlannedVaccination.person_id == child.id)
                .with_for_update())).all()}
            row = rows.get((report.vaccine, report.dose))
            if row is not None and row.administered_on is not None:
                return ActionOutcome(done=False, detail=f"{report.vaccine} dose {report.dose} was already recorded")
            if row is None:
                await session.execute(insert(PlannedVaccination).values(
                    person_id=child.id, vaccine=report.vaccine, dose=report.dose, due_date=report.administered_on,
                    nominal_due_date=None, status="administered", administered_on=report.administered_on))
            else:
                row.status, row.administered_on = "administered", report.administered_on
            given = {k: r.administered_on for k, r in rows.items() if r.administered_on is not None}
            given[(report.vaccine, report.dose)] = report.administered_on
            planned_on = await registered_on(session, child.id)
            replanned = 0
            for number, (due, due_by) in rules.replan_after_dose(child.date_of_birth, planned_on, given,
                                                                 report.vaccine, report.dose).items():
                later = rows.get((report.vaccine, number))
                if later is not None and later.administered_on is None and later.due_date != due:
                    later.due_date, later.due_by = due, due_by
                    replanned += 1
            return ActionOutcome(done=True, detail=f"{report.vaccine} dose {report.dose} recorded; "
                                                   f"{replanned} later dose(s) re-planned")
