"""Health agency: the child's immunization plan, every dose with its due date, from the schedule data file."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

import rules
from activities.common import log_access, require_child
from registry.db import Registry
from registry.models import PlannedVaccination
from workflows.contracts import ChildRef, StepDone

AGENCY = "health"


class HealthAgency(Protocol):
    async def plan_vaccinations(self, inp: ChildRef) -> StepDone: ...


class RegistryHealthAgency:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def plan_vaccinations(self, inp: ChildRef) -> StepDone:
        async with self.registry.unit_of_work() as session:
            child = await require_child(session, inp.child_person_id)
            log_access(session, citizen=child.id, agency=AGENCY, purpose="plan immunization from date of birth",
                       workflow_id=inp.workflow_id)
            plan = rules.vaccination_plan(child.date_of_birth)
            rows = [dict(person_id=child.id, vaccine=d.vaccine, dose=d.dose, due_date=d.due_date, due_by=d.due_by)
                    for d in plan]
            result = await session.execute(insert(PlannedVaccination).values(rows).on_conflict_do_nothing())
            total = await session.scalar(
                select(func.count()).select_from(PlannedVaccination)
                .where(PlannedVaccination.person_id == child.id))
            return StepDone(newly_done=bool(result.rowcount), count=int(total or 0))  # type: ignore[attr-defined]
