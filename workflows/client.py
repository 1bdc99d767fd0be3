"""Starting and finding birth workflows from outside (the bridge, the CLI)."""

from __future__ import annotations

import uuid

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from infra.search_attributes import LIFE_EVENT, NEEDS_ATTENTION, PROVINCE_CODE
from registry.births import birth_workflow_id as birth_workflow_id  # re-exported: where callers look for it
from registry.births import legacy_birth_workflow_id as legacy_birth_workflow_id
from workflows.birth import BirthRegistrationWorkflow
from workflows.contracts import BirthCase, DeathCase
from workflows.death import DeathRegistrationWorkflow, death_workflow_id


class TemporalBirthStarter:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start_birth(self, case: BirthCase, workflow_id: str) -> None:
        """Start the registration's workflow under the id stored with it (`birth-<province>-<number>`, or
        `birth-<number>` for a registration received before migration 0004)."""
        try:
            await self.client.start_workflow(
                BirthRegistrationWorkflow.run, case, id=workflow_id,
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


def birth_handle(client: Client, workflow_id: str) -> WorkflowHandle[BirthRegistrationWorkflow, object]:
    """The workflow of a registration, by the id stored in its row (see `registry.births`)."""
    return client.get_workflow_handle_for(BirthRegistrationWorkflow.run,  # type: ignore[return-value]
                                          workflow_id)


class TemporalDeathStarter:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start_death(self, person_id: uuid.UUID, province_code: str) -> None:
        """Start `death-<person uuid>`; a death registered twice (or redelivered) starts nothing more."""
        try:
            await self.client.start_workflow(
                DeathRegistrationWorkflow.run, DeathCase(person_id=person_id, province_code=province_code),
                id=death_workflow_id(person_id), task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes([SearchAttributePair(LIFE_EVENT, "death"),
                                                         SearchAttributePair(PROVINCE_CODE, province_code),
                                                         SearchAttributePair(NEEDS_ATTENTION, False)]),
                static_summary=f"Death registration in province {province_code}")
        except WorkflowAlreadyStartedError:
            pass
