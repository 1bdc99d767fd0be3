"""Key rotation with a workflow in flight: started under one key, finished after a newer key encrypts."""

from __future__ import annotations

import uuid

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.codec import PayloadKeys, converter_with
from tests.helpers import encryption_key_ids
from workflows.birth import BirthRegistrationWorkflow, SupplyHousehold
from workflows.client import birth_workflow_id
from workflows.contracts import BirthCase

from .conftest import NAMESPACE, TEST_KEYS, FakeAgencies
from .test_birth_workflow import wait_for_attention

ROTATED = PayloadKeys({**TEST_KEYS.keys, "rotated": bytes(range(32, 64))})


async def test_a_workflow_started_under_the_old_key_finishes_under_the_new_one(
        env: WorkflowEnvironment, agencies: FakeAgencies) -> None:
    agencies.residence_attention_reason = "mother-not-in-registry"
    queue = f"rotation-{uuid.uuid4()}"
    case = BirthCase(registration_number=agencies.registration_number, province_code=agencies.province_code)
    workflow_id = birth_workflow_id(case.province_code, case.registration_number)
    rotated = Client(env.client.service_client, namespace=NAMESPACE, data_converter=converter_with(ROTATED))
    handle = rotated.get_workflow_handle_for(BirthRegistrationWorkflow.run, workflow_id)
    try:
        async with Worker(env.client, task_queue=queue, workflows=[BirthRegistrationWorkflow],
                          activities=agencies.activities, max_cached_workflows=0):
            old = await env.client.start_workflow(BirthRegistrationWorkflow.run, case, id=workflow_id,
                                                  task_queue=queue)
            await wait_for_attention(old, "mother-not-in-registry")

        async with Worker(rotated, task_queue=queue, workflows=[BirthRegistrationWorkflow],
                          activities=agencies.activities):
            await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                        SupplyHousehold(household_id=agencies.operator_household_id))
            outcome = await handle.result()
    finally:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate(reason="left running by a failed test")

    assert outcome.child_person_id == agencies.child_id
    used = set(encryption_key_ids((await handle.fetch_history()).to_json_dict()))
    assert {"workflow-tests", "rotated"} <= used
