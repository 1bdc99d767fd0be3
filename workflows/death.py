"""DeathRegistrationWorkflow: a registered death reaches every agency once (Decree 63/2024, group 2).

The death is recorded first (the person becomes `deceased`: from then on no notice about them goes out but the
death notice), then the citizen's lifecycle is stopped, and residence deregistration, the closing of the
health-insurance card and the funeral allowance run in parallel; the family is told once. The id is
`death-<person uuid>`, so a death registered twice runs once. History holds the person's UUID only.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from infra.search_attributes import LIFE_EVENT, NEEDS_ATTENTION, PROVINCE_CODE, STAGE
    from workflows.contracts import DeathCase, DeathOutcome, DeathStep, DeathStepDone

STEP_TIMEOUT = timedelta(seconds=60)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=5))
"""Each step retries until its agency answers: a death must reach every agency."""

PARALLEL_STEPS = ("deregister_residence", "close_health_insurance_card", "record_funeral_allowance")


def death_workflow_id(person_id: object) -> str:
    return f"death-{person_id}"


@workflow.defn
class DeathRegistrationWorkflow:
    def __init__(self) -> None:
        self._steps: dict[str, str] = {}

    @workflow.run
    async def run(self, case: DeathCase) -> DeathOutcome:
        workflow.upsert_search_attributes([LIFE_EVENT.value_set("death"), PROVINCE_CODE.value_set(case.province_code),
                                           NEEDS_ATTENTION.value_set(False)])
        step = DeathStep(person_id=case.person_id, workflow_id=workflow.info().workflow_id)
        for name in ("record_death", "stop_citizen_lifecycle"):
            await self._run(name, step)
        await asyncio.gather(*(self._run(name, step) for name in PARALLEL_STEPS))
        await self._run("notify_death", step)
        workflow.upsert_search_attributes([STAGE.value_set("completed")])
        return DeathOutcome(person_id=case.person_id, steps=dict(self._steps))

    async def _run(self, name: str, step: DeathStep) -> DeathStepDone:
        self._steps[name] = "running"
        workflow.upsert_search_attributes([STAGE.value_set(name)])
        done: DeathStepDone = await workflow.execute_activity(
            name, step, result_type=DeathStepDone, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"death: {name.replace('_', ' ')}")
        self._steps[name] = done.detail or "done"
        return done

    @workflow.query
    def progress(self) -> dict[str, str]:
        return dict(self._steps)
