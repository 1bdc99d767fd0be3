"""The ceiling: no-op workflows of the birth workflow's exact shape on the same server, worker and sandbox.

Thirteen steps in the birth's order and parallelism: record → notice → ID → notice → three branches in parallel
([residence → notice → school forecast → notice], [health card → notice], [vaccinations → notice]) →
lifecycle hand-over. Every step is the same no-op activity, run as a regular activity or as a local one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import activity, workflow

STEP_TIMEOUT = timedelta(seconds=60)


@activity.defn(name="bench_noop_step")
async def noop_step(step: str) -> str:
    return step


async def _branches(step: Callable[[str], Awaitable[str]]) -> None:
    async def residence_then_school() -> None:
        for name in ("register_residence", "notify", "add_to_school_forecast", "notify"):
            await step(name)

    async def single(name: str) -> None:
        await step(name)
        await step("notify")

    for name in ("record_birth", "notify", "assign_personal_id", "notify"):
        await step(name)
    await asyncio.gather(residence_then_school(), single("issue_child_health_card"), single("plan_vaccinations"))
    await step("start_citizen_lifecycle")


@workflow.defn(name="BenchBirthShapeActivities")
class BirthShapeActivities:
    @workflow.run
    async def run(self) -> None:
        async def step(name: str) -> str:
            return await workflow.execute_activity(noop_step, name, start_to_close_timeout=STEP_TIMEOUT)

        await _branches(step)


@workflow.defn(name="BenchBirthShapeLocalActivities")
class BirthShapeLocalActivities:
    @workflow.run
    async def run(self) -> None:
        async def step(name: str) -> str:
            return await workflow.execute_local_activity(noop_step, name, start_to_close_timeout=STEP_TIMEOUT)

        await _branches(step)


CEILING_WORKFLOWS: dict[str, type[BirthShapeActivities] | type[BirthShapeLocalActivities]] = {
    "activities": BirthShapeActivities, "local activities": BirthShapeLocalActivities}
CEILING_TYPE_NAMES = {"activities": "BenchBirthShapeActivities", "local activities": "BenchBirthShapeLocalActivities"}
"""Workflow type names the benchmark starts them by."""
