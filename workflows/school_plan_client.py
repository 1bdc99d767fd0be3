"""Running the school-capacity plan from outside (the CLI, the demo): trigger the schedule now, or start a
one-off plan for a province, and wait for its outcome."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleOverlapPolicy, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from infra.schedules import SCHOOL_PLAN_SCHEDULE_ID
from infra.search_attributes import LIFE_EVENT, PROVINCE_CODE
from workflows.school_plan import LIFE_EVENT_VALUE, SchoolCapacityPlanWorkflow
from workflows.school_plan_contracts import PlanOutcome, PlanRequest

PlanHandle = WorkflowHandle[SchoolCapacityPlanWorkflow, PlanOutcome]


class SchedulePlanMissing(RuntimeError):
    """The schedule `school-capacity-plan` does not exist: the worker has never started on this server."""


async def scheduled_runs(client: Client) -> set[tuple[str, str]]:
    """(workflow id, first run id) of every run the schedule recently started or is running."""
    info = (await client.get_schedule_handle(SCHOOL_PLAN_SCHEDULE_ID).describe()).info
    actions = [*info.running_actions, *(r.action for r in info.recent_actions)]
    return {(a.workflow_id, a.first_execution_run_id) for a in actions
            if isinstance(a, ScheduleActionExecutionStartWorkflow)}


async def trigger_schedule(client: Client, *, within: float = 30.0) -> PlanHandle:
    """Run the schedule's action now (every province, the next entry year) and return the run it started."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        before = await scheduled_runs(client)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise SchedulePlanMissing(f"the schedule {SCHOOL_PLAN_SCHEDULE_ID} does not exist yet: start the "
                                      "worker once (`make run` or `make demo`), which creates it") from None
        raise
    await client.get_schedule_handle(SCHOOL_PLAN_SCHEDULE_ID).trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    deadline = asyncio.get_running_loop().time() + within
    while True:
        started = await scheduled_runs(client) - before
        if started:
            workflow_id, run_id = sorted(started)[-1]
            return client.get_workflow_handle_for(SchoolCapacityPlanWorkflow.run, workflow_id,  # type: ignore[return-value]
                                                  run_id=run_id)
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the schedule {SCHOOL_PLAN_SCHEDULE_ID} did not start a run within {within:.0f}s")
        await asyncio.sleep(0.2)


def one_off_workflow_id(province_code: str, now: datetime | None = None) -> str:
    return f"school-plan-{province_code}-{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%S%fZ')}"


async def start_for_province(client: Client, task_queue: str, province_code: str,
                             first_entry_year: int | None = None) -> PlanHandle:
    """A one-off plan for one province, `school-plan-<province>-<UTC timestamp>`."""
    return await client.start_workflow(
        SchoolCapacityPlanWorkflow.run, PlanRequest(province_code=province_code, first_entry_year=first_entry_year),
        id=one_off_workflow_id(province_code), task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes([SearchAttributePair(LIFE_EVENT, LIFE_EVENT_VALUE),
                                                 SearchAttributePair(PROVINCE_CODE, province_code)]),
        static_summary=f"School capacity plan, province {province_code}", execution_timeout=timedelta(hours=6))
