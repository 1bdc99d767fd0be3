"""The bridge's delivery guarantees (nak on failure, drain on stop) and collision-safe ID allocation, on a
NATS server and PostgreSQL of their own (the session's registry, a separate NATS so no other consumer runs)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

import rules
from activities.identity import RegistryIdentityAgency
from events.birth_registered import BirthHandler
from events.bridge import EventBridge
from infra.nats_identities import BRIDGE
from infra.settings import Settings
from infra.stack import EmbeddedStack, free_port
from registry.models import IdentityNumber, Person
from starter import publish_raw
from tests.helpers import eventually
from tests.integration.test_birth_end_to_end import birth_event
from workflows.contracts import AssignIdInput, BirthCase

pytestmark = pytest.mark.integration


class ScriptedStarter:
    """Stands in for Temporal: fails the first `failures` calls, and can hold calls until released."""

    def __init__(self, failures: int = 0, hold: bool = False) -> None:
        self.failures = failures
        self.calls: list[str] = []
        self.started: list[str] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def start_birth(self, case: BirthCase, workflow_id: str) -> None:
        self.calls.append(case.registration_number)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("Temporal unavailable (scripted)")
        await self.release.wait()
        self.started.append(case.registration_number)


@pytest.fixture
async def own_nats(settings: Settings, service: Any, tmp_path: Any) -> AsyncIterator[tuple[Settings, Any]]:
    import worker

    own = Settings(LIFEEVENTS_DATA_DIR=tmp_path, NATS_PORT=free_port(), NATS_URL=None,
                   DATABASE_URL=settings.database_url, TEMPORAL_ADDRESS=settings.temporal_address,
                   BRIDGE_MAX_BACKOFF_SECONDS=0.2, BRIDGE_CONCURRENCY=4, BRIDGE_CIVIL_DURABLE="bridge-under-test")
    stack = EmbeddedStack(own, headless_ui=True)
    stack.start()
    await worker.provision_streams(own)
    nc = await worker.connect_nats(own, BRIDGE)
    js = nc.jetstream()
    try:
        yield own, js
    finally:
        await nc.drain()
        stack.stop()


async def test_unavailable_downstream_naks_and_redelivers_nothing_lost(own_nats: Any, service: Any) -> None:
    own, js = own_nats
    starter = ScriptedStarter(failures=3)
    bridge = EventBridge(js, [BirthHandler(service.registry, starter)], own)
    stop = asyncio.Event()
    runner = asyncio.create_task(bridge.run(stop))
    reg, raw = birth_event(30)
    await publish_raw(own, [raw], progress=False)

    async def started() -> list[str]:
        return starter.started

    await eventually(started, lambda s: s == [reg], within=30, what="start after three failures")
    stop.set()
    await runner
    assert starter.calls == [reg] * 4 and bridge.retried == 3 and bridge.processed == 1
    info = await js.consumer_info(own.civil_stream, own.bridge_civil_durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_stop_drains_in_flight_events_before_returning(own_nats: Any, service: Any) -> None:
    own, js = own_nats
    starter = ScriptedStarter(hold=True)
    bridge = EventBridge(js, [BirthHandler(service.registry, starter)], own)
    stop = asyncio.Event()
    runner = asyncio.create_task(bridge.run(stop))
    events = [birth_event(40 + n) for n in range(3)]
    await publish_raw(own, [raw for _, raw in events], progress=False)

    async def calls() -> int:
        return len(starter.calls)

    await eventually(calls, lambda n: n == 3, within=30, what="three events in flight")
    stop.set()  # what SIGTERM does in worker.run
    await asyncio.sleep(0)
    assert not runner.done()  # still waiting for the in-flight work
    starter.release.set()
    await asyncio.wait_for(runner, timeout=30)
    assert sorted(starter.started) == sorted(reg for reg, _ in events)
    info = await js.consumer_info(own.civil_stream, own.bridge_civil_durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0 and info.num_redelivered == 0


async def _new_child(service: Any, province: str) -> uuid.UUID:
    async with service.registry.unit_of_work() as session:
        child = Person(id=uuid.uuid4(), full_name="Test Child", sex="female", date_of_birth=date(2026, 11, 1))
        session.add(child)
    return child.id


async def test_id_allocation_draws_again_on_collision_and_is_idempotent(service: Any) -> None:
    province = "001"
    first, second = await _new_child(service, province), await _new_child(service, province)
    draws = iter([424242, 424242, 424242, 515151])
    agency = RegistryIdentityAgency(service.registry, draw=lambda: next(draws))

    def request(child: uuid.UUID) -> AssignIdInput:
        return AssignIdInput(child_person_id=child, workflow_id=f"test-{child}", province_code=province,
                             registration_number=f"ID{child.hex[:12].upper()}")

    results = await asyncio.gather(agency.assign_personal_id(request(first)),
                                   agency.assign_personal_id(request(second)))
    assert all(r.newly_assigned for r in results)
    again = await agency.assign_personal_id(request(first))
    assert again.newly_assigned is False
    async with service.registry.unit_of_work() as session:
        numbers = dict((await session.execute(
            select(IdentityNumber.person_id, IdentityNumber.number)
            .where(IdentityNumber.person_id.in_([first, second])))).all())
    prefix = rules.personal_id_prefix(province, "female", date(2026, 11, 1))
    assert sorted(numbers.values()) == [prefix + "424242", prefix + "515151"]


async def test_consumer_configuration_follows_the_settings_on_restart(own_nats: Any, service: Any) -> None:
    own, js = own_nats

    async def run_once(settings: Settings) -> Any:
        bridge = EventBridge(js, [BirthHandler(service.registry, ScriptedStarter())], settings)
        stop = asyncio.Event()
        stop.set()  # subscribe, then stop at once
        await bridge.run(stop)
        return (await js.consumer_info(settings.civil_stream, settings.bridge_civil_durable)).config

    first = await run_once(own)
    changed = own.model_copy(update={"bridge_max_deliver": 7, "bridge_concurrency": 2})
    second = await run_once(changed)

    assert (first.max_deliver, first.max_ack_pending) == (own.bridge_max_deliver + 1, own.bridge_concurrency * 4)
    assert (second.max_deliver, second.max_ack_pending) == (8, 8)
