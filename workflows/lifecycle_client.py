"""Starting and signalling a citizen's lifecycle from outside (the bridge, the CLI's backfill)."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from infra.search_attributes import LIFE_EVENT, NEEDS_ATTENTION
from workflows.contracts import ChildRef, DeathStep, DeathStepDone, DoseReported, LifecycleInput, StepDone

LIFECYCLE_WORKFLOW = "CitizenLifecycleWorkflow"
DOSE_REPORTED_SIGNAL = "dose_reported"
LIFECYCLE_SUMMARY = "Citizen lifecycle: reminders and notices over the years"


def citizen_workflow_id(person_id: uuid.UUID) -> str:
    """One lifecycle per citizen, keyed by the registry's person UUID (never the ID number, which can change)."""
    return f"citizen-{person_id}"


def lifecycle_search_attributes() -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(LIFE_EVENT, "lifecycle"),
                                  SearchAttributePair(NEEDS_ATTENTION, False)])


class TemporalLifecycles:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(self, person_id: uuid.UUID) -> bool:
        """Start the citizen's lifecycle; False when one already runs (or ended: a closed lifecycle is final)."""
        try:
            await self.client.start_workflow(
                LIFECYCLE_WORKFLOW, LifecycleInput(person_id=person_id), id=citizen_workflow_id(person_id),
                task_queue=self.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=lifecycle_search_attributes(), static_summary=LIFECYCLE_SUMMARY)
        except WorkflowAlreadyStartedError:
            return False
        return True

    async def start_for_child(self, inp: ChildRef) -> StepDone:
        """The `start_citizen_lifecycle` activity: the birth fan-out hands the child over to its lifecycle."""
        return StepDone(newly_done=await self.start(inp.child_person_id))

    async def stop_for_death(self, inp: DeathStep) -> DeathStepDone:
        """The `stop_citizen_lifecycle` activity of DeathRegistrationWorkflow."""
        stopped = await stop_lifecycle(self.client, inp.person_id)
        return DeathStepDone(newly_done=stopped, detail="lifecycle stopped" if stopped else "no lifecycle running")

    async def dose_reported(self, person_id: uuid.UUID, report_id: uuid.UUID) -> None:
        """Signal the lifecycle that a dose was reported, starting it first if the citizen has none yet."""
        await self.client.start_workflow(
            LIFECYCLE_WORKFLOW, LifecycleInput(person_id=person_id), id=citizen_workflow_id(person_id),
            task_queue=self.task_queue, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=lifecycle_search_attributes(), static_summary=LIFECYCLE_SUMMARY,
            start_signal=DOSE_REPORTED_SIGNAL, start_signal_args=[DoseReported(report_id=report_id)])


async def history_lengths(client: Client, handle: WorkflowHandle[Any, Any]) -> list[int]:
    """The number of history events of each run of a lifecycle, following continue-as-new from the first."""
    lengths = []
    run_id: str | None = handle.first_execution_run_id or handle.result_run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                  if last.HasField("workflow_execution_continued_as_new_event_attributes") else None)
    return lengths


CITIZEN_DIED_SIGNAL = "citizen_died"


async def stop_lifecycle(client: Client, person_id: uuid.UUID) -> bool:
    """Tell the citizen's lifecycle that they died; False when there is none running (born before the system,
    or already ended)."""
    try:
        await client.get_workflow_handle(citizen_workflow_id(person_id)).signal(CITIZEN_DIED_SIGNAL)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
