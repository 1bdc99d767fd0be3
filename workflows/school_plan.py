"""SchoolCapacityPlanWorkflow: grade-1 places against the children who will need them, ward by ward.

Run monthly by the Temporal Schedule `school-capacity-plan` (`infra/schedules.py`), or once for a province from
`starter.py plan-schools --province CODE`. Three education-agency steps:

1. `compute_school_plan`: demand and places per province, ward and entry year, stored as one `school_plan_runs`
   row keyed by `<workflow id>/<run id>` (a retried step stores nothing twice) with its cells;
2. `write_school_reports`: an HTML and a CSV report per province under `<data dir>/reports/school-plan/<run id>/`;
3. `notify_education_departments`: one notice to each province's education department that has a ward short
   of places (once per plan run and province), also published on NATS.

History holds codes, counts, the run's UUID and file paths: a plan is an aggregate, no citizen is in it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from infra.search_attributes import LIFE_EVENT, PROVINCE_CODE, STAGE
    from workflows.school_plan_contracts import (
        DepartmentNoticeRequest,
        NoticesSent,
        PlanComputed,
        PlanOutcome,
        PlanRequest,
        PlanRunRef,
        PlanStep,
        ReportsWritten,
    )

LIFE_EVENT_VALUE = "school-plan"
STEP_TIMEOUT = timedelta(minutes=10)
"""Computing a country's plan or writing its reports may take a while; each step is one transaction."""
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=5), maximum_attempts=20,
                         non_retryable_error_types=["UnknownProvince"])
R = TypeVar("R")


@workflow.defn
class SchoolCapacityPlanWorkflow:
    def __init__(self) -> None:
        self._stage = "pending"

    @workflow.run
    async def run(self, request: PlanRequest) -> PlanOutcome:
        attributes = [LIFE_EVENT.value_set(LIFE_EVENT_VALUE)]
        if request.province_code is not None:
            attributes.append(PROVINCE_CODE.value_set(request.province_code))
        workflow.upsert_search_attributes(attributes)
        info = workflow.info()
        key = f"{info.workflow_id}/{info.run_id}"
        computed = await self._step("compute_school_plan", PlanStep(
            workflow_id=key, province_code=request.province_code, first_entry_year=request.first_entry_year),
            PlanComputed)
        run = PlanRunRef(plan_run_id=computed.plan_run_id, workflow_id=key)
        written = await self._step("write_school_reports", run, ReportsWritten)
        sent = await self._step("notify_education_departments", DepartmentNoticeRequest(
            plan_run_id=computed.plan_run_id, workflow_id=key, reports=written.reports), NoticesSent)
        self._set_stage("completed")
        return PlanOutcome(plan_run_id=computed.plan_run_id, province_code=request.province_code,
                           first_entry_year=computed.first_entry_year, years=computed.years,
                           report_dir=written.report_dir, index=written.index, reports=written.reports,
                           short_wards=computed.short_wards, notified_provinces=sent.provinces)

    async def _step(self, name: str, arg: Any, result_type: type[R]) -> R:
        self._set_stage(name)
        result: R = await workflow.execute_activity(name, arg, result_type=result_type,
                                                    start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY)
        return result

    def _set_stage(self, stage: str) -> None:
        self._stage = stage
        workflow.upsert_search_attributes([STAGE.value_set(stage)])

    @workflow.query
    def stage(self) -> str:
        return self._stage
