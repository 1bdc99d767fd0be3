"""SchoolCapacityPlanWorkflow on the time-skipping test server, with fake education-agency steps."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.search_attributes import LIFE_EVENT, PROVINCE_CODE, STAGE
from workflows.school_plan import SchoolCapacityPlanWorkflow
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


@dataclass
class FakeEducation:
    short_wards: dict[str, int] = field(default_factory=lambda: {"001": 2, "079": 0, "048": 1})
    notify_failures: int = 0
    calls: list[tuple[str, object]] = field(default_factory=list)
    runs: dict[str, uuid.UUID] = field(default_factory=dict)
    notices: set[str] = field(default_factory=set)

    @activity.defn(name="compute_school_plan")
    async def compute(self, inp: PlanStep) -> PlanComputed:
        self.calls.append(("compute_school_plan", inp))
        if inp.province_code == "999":
            raise ApplicationError("unknown province code '999'", type="UnknownProvince", non_retryable=True)
        run_id = self.runs.setdefault(inp.workflow_id, uuid.uuid4())
        short = {p: n for p, n in self.short_wards.items() if inp.province_code in (None, p)}
        return PlanComputed(plan_run_id=run_id, first_entry_year=inp.first_entry_year or 2027, years=6,
                            provinces=sorted(short), short_wards=short)

    @activity.defn(name="write_school_reports")
    async def write(self, inp: PlanRunRef) -> ReportsWritten:
        self.calls.append(("write_school_reports", inp))
        folder = f"/data/reports/school-plan/{inp.plan_run_id}"
        return ReportsWritten(report_dir=folder, index=f"{folder}/index.html", reports={
            p: [f"{folder}/{p}.html", f"{folder}/{p}.csv"] for p in self.short_wards})

    @activity.defn(name="notify_education_departments")
    async def notify(self, inp: DepartmentNoticeRequest) -> NoticesSent:
        self.calls.append(("notify_education_departments", inp))
        short = sorted(p for p, n in self.short_wards.items() if n and p in inp.reports)
        new = {f"{inp.plan_run_id}/{p}" for p in short} - self.notices
        self.notices |= new
        if activity.info().attempt <= self.notify_failures:
            raise ApplicationError("department inbox unavailable", type="Unavailable")
        return NoticesSent(provinces=short, newly_created=len(new), published=len(new))

    @property
    def activities(self) -> list[Callable[..., Any]]:
        return [self.compute, self.write, self.notify]


async def run_plan(env: WorkflowEnvironment, fake: FakeEducation, request: PlanRequest) -> PlanOutcome:
    queue = f"school-plan-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[SchoolCapacityPlanWorkflow],
                      activities=fake.activities):
        handle = await env.client.start_workflow(SchoolCapacityPlanWorkflow.run, request,
                                                 id=f"school-plan-test-{uuid.uuid4()}", task_queue=queue)
        outcome = await handle.result()
        attrs = (await handle.describe()).typed_search_attributes
        assert attrs.get(LIFE_EVENT) == "school-plan" and attrs.get(STAGE) == "completed"
        assert attrs.get(PROVINCE_CODE) == request.province_code
        assert fake.calls[0][1] == PlanStep(workflow_id=f"{handle.id}/{handle.result_run_id}",
                                            province_code=request.province_code,
                                            first_entry_year=request.first_entry_year)
        return outcome


async def test_compute_then_reports_then_one_notice_per_short_province(env: WorkflowEnvironment) -> None:
    fake = FakeEducation(notify_failures=2)  # the notify step is retried: still one notice per province
    outcome = await run_plan(env, fake, PlanRequest())
    assert [name for name, _ in fake.calls] == ["compute_school_plan", "write_school_reports",
                                                *["notify_education_departments"] * 3]
    assert outcome.short_wards == {"001": 2, "048": 1, "079": 0}
    assert outcome.notified_provinces == ["001", "048"]
    run_id = outcome.plan_run_id
    assert fake.notices == {f"{run_id}/001", f"{run_id}/048"}
    assert outcome.index.endswith(f"{run_id}/index.html")


async def test_a_plan_for_one_province_and_year(env: WorkflowEnvironment) -> None:
    fake = FakeEducation()
    outcome = await run_plan(env, fake, PlanRequest(province_code="001", first_entry_year=2030))
    assert outcome.first_entry_year == 2030 and outcome.short_wards == {"001": 2}


async def test_an_unknown_province_fails_at_once(env: WorkflowEnvironment) -> None:
    fake = FakeEducation()
    with pytest.raises(WorkflowFailureError):
        await run_plan(env, fake, PlanRequest(province_code="999"))
    assert [name for name, _ in fake.calls] == ["compute_school_plan"]
