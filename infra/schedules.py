"""Temporal Schedules the service keeps: the monthly school-capacity plan.

`ensure_school_plan_schedule` runs at every start-up of the service (`worker.service`): it creates the schedule
when it is absent and leaves an existing one alone (an operator may have paused or edited it in the UI).
"""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from infra.search_attributes import LIFE_EVENT
from infra.settings import Settings
from rules.lifecycle import lifecycle_policy
from workflows.school_plan import LIFE_EVENT_VALUE, SchoolCapacityPlanWorkflow
from workflows.school_plan_contracts import PlanRequest

SCHOOL_PLAN_SCHEDULE_ID = "school-capacity-plan"
SCHOOL_PLAN_WORKFLOW_ID = "school-plan-scheduled"
"""Temporal appends the scheduled time to it: `school-plan-scheduled-2026-12-01T02:00:00+07:00`-style ids."""


def school_plan_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SchoolCapacityPlanWorkflow.run, PlanRequest(), id=SCHOOL_PLAN_WORKFLOW_ID, task_queue=settings.task_queue,
            typed_search_attributes=TypedSearchAttributes([SearchAttributePair(LIFE_EVENT, LIFE_EVENT_VALUE)]),
            static_summary="School capacity plan, every province"),
        spec=ScheduleSpec(cron_expressions=[settings.school_plan_cron], time_zone_name=lifecycle_policy().time_zone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="Grade-1 places against the children who will need them; "
                                 "`starter.py plan-schools` runs it now"))


async def ensure_school_plan_schedule(client: Client, settings: Settings) -> bool:
    """Create the schedule `school-capacity-plan` unless it exists; True when it was created now."""
    try:
        await client.get_schedule_handle(SCHOOL_PLAN_SCHEDULE_ID).describe()
        return False
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    try:
        await client.create_schedule(SCHOOL_PLAN_SCHEDULE_ID, school_plan_schedule(settings))
    except ScheduleAlreadyRunningError:  # another process created it in between
        return False
    return True
