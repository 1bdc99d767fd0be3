"""ResidenceChangeWorkflow and BirthCorrectionWorkflow: a registered move or birth correction reaches every
agency once.

A move (`move-<change uuid>`): residence (close the open period, open one in the new household) → the school
forecast follows the child → the citizen's lifecycle is told its agenda changed → the family is told once. The
health station is re-targeted without a step: an overdue escalation reads the residence when it happens.

A correction (`correction-<correction uuid>`): the civil registry applies it → a new ID number if the sex or the
birth year changed → for a new date of birth, in parallel: the vaccination plan, the under-6 card, the
school-entry year (the card also follows a new ID number) → the lifecycle is told → the family is told once.

History holds the change's and the person's UUIDs, field names and step details (codes, counts) only.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from infra.search_attributes import STAGE
    from workflows.change_contracts import (
        AgendaChangeNotice,
        ChangeCase,
        ChangeOutcome,
        ChangeRef,
        ChangeStep,
        CorrectionApplied,
        CorrectionNoticeInput,
        IdReissued,
        MoveOutcome,
    )
    from workflows.contracts import NoticeOutcome

T = TypeVar("T", bound=BaseModel)

STEP_TIMEOUT = timedelta(seconds=60)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=5))
"""Each step retries until its agency answers: a registered change must reach every agency."""


class _ChangeWorkflow:
    def __init__(self) -> None:
        self._steps: dict[str, str] = {}

    async def _run(self, name: str, arg: BaseModel, result_type: type[T]) -> T:
        self._steps[name] = "running"
        workflow.upsert_search_attributes([STAGE.value_set(name)])
        result: T = await workflow.execute_activity(name, arg, result_type=result_type,
                                                    start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
                                                    summary=name.replace("_", " "))
        detail: Any = getattr(result, "detail", None)
        self._steps[name] = detail or "done"
        return result

    async def _agenda_changed(self, case: ChangeCase, reason: str) -> None:
        await self._run("signal_agenda_changed",
                        AgendaChangeNotice(person_id=case.person_id, reason=reason, change_id=case.change_id),
                        ChangeStep)

    def _outcome(self, case: ChangeCase) -> ChangeOutcome:
        workflow.upsert_search_attributes([STAGE.value_set("completed")])
        return ChangeOutcome(change_id=case.change_id, person_id=case.person_id, steps=dict(self._steps))

    @staticmethod
    def _ref(case: ChangeCase) -> ChangeRef:
        return ChangeRef(change_id=case.change_id, person_id=case.person_id,
                         workflow_id=workflow.info().workflow_id)


@workflow.defn(name="ResidenceChangeWorkflow")
class ResidenceChangeWorkflow(_ChangeWorkflow):
    @workflow.run
    async def run(self, case: ChangeCase) -> ChangeOutcome:
        ref = self._ref(case)
        moved = await self._run("move_residence", ref, MoveOutcome)
        if moved.moved:
            await self._run("move_school_forecast", ref, ChangeStep)
            await self._agenda_changed(case, "residence")
            await self._run("notify_residence_changed", ref, NoticeOutcome)
        return self._outcome(case)

    @workflow.query
    def progress(self) -> dict[str, str]:
        return dict(self._steps)


@workflow.defn(name="BirthCorrectionWorkflow")
class BirthCorrectionWorkflow(_ChangeWorkflow):
    @workflow.run
    async def run(self, case: ChangeCase) -> ChangeOutcome:
        ref = self._ref(case)
        applied = await self._run("apply_birth_correction", ref, CorrectionApplied)
        if not applied.changed:
            self._steps["apply_birth_correction"] = "nothing differed from the registry"
            return self._outcome(case)
        self._steps["apply_birth_correction"] = "changed: " + ", ".join(applied.changed)
        reissued = IdReissued(reissued=False)
        if applied.prefix_may_change:
            reissued = await self._run("reissue_personal_id", ref, IdReissued)
        parallel = []
        if applied.date_changed:
            parallel += [self._run("replan_vaccinations_after_correction", ref, ChangeStep),
                         self._run("recompute_school_entry_after_correction", ref, ChangeStep)]
        if applied.date_changed or reissued.reissued:
            parallel.append(self._run("update_child_card_after_correction", ref, ChangeStep))
        await asyncio.gather(*parallel)
        if applied.date_changed:
            await self._agenda_changed(case, "birth-correction")
        await self._run("notify_birth_corrected",
                        CorrectionNoticeInput(**ref.model_dump(), id_reissued=reissued.reissued), NoticeOutcome)
        return self._outcome(case)

    @workflow.query
    def progress(self) -> dict[str, str]:
        return dict(self._steps)
