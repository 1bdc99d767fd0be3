"""Starting the move and correction workflows (the bridge) and telling a citizen's lifecycle that its agenda
changed (an activity of those workflows)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from infra.search_attributes import LIFE_EVENT, NEEDS_ATTENTION, PROVINCE_CODE
from registry.changes import correction_workflow_id, move_workflow_id
from workflows.change_contracts import (
    AGENDA_CHANGED_SIGNAL,
    AgendaChanged,
    AgendaChangeNotice,
    ChangeCase,
    ChangeStep,
)
from workflows.lifecycle_client import citizen_workflow_id


class TemporalChanges:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def _start(self, workflow: str, case: ChangeCase, workflow_id: str, life_event: str, province_code: str,
                     summary: str) -> None:
        try:
            await self.client.start_workflow(
                workflow, case, id=workflow_id, task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes([SearchAttributePair(LIFE_EVENT, life_event),
                                                         SearchAttributePair(PROVINCE_CODE, province_code),
                                                         SearchAttributePair(NEEDS_ATTENTION, False)]),
                static_summary=summary)
        except WorkflowAlreadyStartedError:
            pass  # already ran to completion: nothing more to do

    async def start_move(self, case: ChangeCase, province_code: str) -> None:
        await self._start("ResidenceChangeWorkflow", case, move_workflow_id(case.change_id), "move",
                          province_code, f"Move registered in province {province_code}")

    async def start_correction(self, case: ChangeCase, province_code: str) -> None:
        await self._start("BirthCorrectionWorkflow", case, correction_workflow_id(case.change_id), "correction",
                          province_code, f"Birth correction in province {province_code}")

    async def signal_agenda_changed(self, inp: AgendaChangeNotice) -> ChangeStep:
        """The `signal_agenda_changed` activity: the citizen's lifecycle reloads its agenda (none running: nothing
        to tell)."""
        try:
            await self.client.get_workflow_handle(citizen_workflow_id(inp.person_id)).signal(
                AGENDA_CHANGED_SIGNAL, AgendaChanged(reason=inp.reason, change_id=inp.change_id))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return ChangeStep(done=False, detail="no lifecycle running")
            raise
        return ChangeStep(done=True, detail="lifecycle told to reload its agenda")
