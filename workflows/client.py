"""Starting and finding birth workflows from outside (the bridge, the CLI)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from infra.search_attributes import LIFE_EVENT, NEEDS_ATTENTION, PROVINCE_CODE
from workflows.birth import BirthRegistrationWorkflow
from workflows.contracts import BirthCase


def birth_workflow_id(registration_number: str) -> str:
    """Business key: the same registration can only ever have one workflow."""
    return f"birth-{registration_number}"


class TemporalBirthStarter:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start_birth(self, case: BirthCase) -> None:
        try:
            await self.client.start_workflow(
                BirthRegistrationWorkflow.run, case, id=birth_workflow_id(case.registration_number),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes([SearchAttributePair(LIFE_EVENT, "birth"),
                                                         SearchAttributePair(PROVINCE_CODE, case.province_code),
                                                         SearchAttributePair(NEEDS_ATTENTION, False)]),
                static_summary=f"Birth registration in province {case.province_code}",
            )
        except WorkflowAlreadyStartedError:
            pass  # already ran to completion: nothing more to do


def birth_handle(client: Client, registration_number: str) -> WorkflowHandle[BirthRegistrationWorkflow, object]:
    return client.get_workflow_handle_for(BirthRegistrationWorkflow.run,  # type: ignore[return-value]
                                          birth_workflow_id(registration_number))
