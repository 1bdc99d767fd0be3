"""The data-access ledger on the real PostgreSQL: one entry per agency step (a retry adds none), a hash chain that
names the first altered or deleted entry, and a citizen's data usage newest first."""

from __future__ import annotations

import argparse
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from activities.common import log_access
from activities.health import RegistryHealthAgency
from cli.ledger import cmd_verify_ledger, data_usage, entry_hash, verify_ledger
from cli.operator import cmd_dlq
from infra.settings import Settings
from registry.models import DataAccess, Person
from registry.seed import family
from starter import publish_raw
from tests.helpers import eventually
from tests.integration.test_birth_end_to_end import birth_event, child_of, wait_all_stages
from workflows.client import birth_workflow_id
from workflows.contracts import ChildRef

pytestmark = pytest.mark.integration
STEP_READERS = {"civil-status", "identity", "residence", "health-insurance", "health", "education", "notification"}


async def _birth(settings: Settings, service: Any, fam_index: int) -> tuple[Any, str]:
    fam = family(fam_index)
    reg, raw = birth_event(fam_index)
    await publish_raw(settings, [raw], progress=False)
    await wait_all_stages(service, [reg])
    return await child_of(service, reg), birth_workflow_id(fam.province_code, reg)


async def _entries(service: Any, workflow_id: str) -> list[DataAccess]:
    async with service.registry.unit_of_work() as session:
        return list((await session.scalars(select(DataAccess).where(DataAccess.workflow_id == workflow_id)
                                           .order_by(DataAccess.seq))).all())


async def test_every_birth_step_leaves_one_entry_and_a_retry_none(settings: Settings, service: Any) -> None:
    child, workflow_id = await _birth(settings, service, 97)
    entries = await _entries(service, workflow_id)
    per_step = Counter((e.agency, e.purpose, e.citizen_person_id) for e in entries)
    assert per_step and set(per_step.values()) == {1}, per_step
    assert {e.agency for e in entries} >= STEP_READERS - {"civil-status"}
    identity = next(e for e in entries if e.agency == "identity")
    assert identity.fields == "sex,date_of_birth" and identity.citizen_person_id == child.id
    assert all(e.fields and e.hash and len(e.prev_hash) == 64 for e in entries)

    health = RegistryHealthAgency(service.registry)  # the step run again, twice, as a retry would
    for _ in range(2):
        await health.plan_vaccinations(ChildRef(child_person_id=child.id, workflow_id=workflow_id))
    assert [e.id for e in await _entries(service, workflow_id)] == [e.id for e in entries]


async def _tamper(owner_engine: AsyncEngine, change: Any) -> Any:
    """Apply `change(session)` as the schema owner (the service's role may not alter the ledger) in a
    transaction, verify the chain inside it, roll back: the shared ledger stays."""
    async with owner_engine.connect() as conn:
        await conn.begin()
        session = AsyncSession(bind=conn)
        try:
            await change(session)
            return await verify_ledger(session, page=7)  # small pages: the paging is exercised
        finally:
            await session.close()
            await conn.rollback()


async def test_verify_names_the_altered_and_the_deleted_entry(settings: Settings, service: Any,
                                                               owner_engine: AsyncEngine) -> None:
    _, workflow_id = await _birth(settings, service, 98)
    target = (await _entries(service, workflow_id))[0]
    async with service.registry.unit_of_work() as session:
        before = await verify_ledger(session, page=7)
    assert before.intact and before.entries >= target.seq, before

    async def alter(session: AsyncSession) -> None:
        await session.execute(update(DataAccess).where(DataAccess.id == target.id).values(purpose="nothing to see"))

    altered = await _tamper(owner_engine, alter)
    assert not altered.intact and (altered.broken_seq, altered.broken_id) == (target.seq, target.id)
    assert altered.reason and altered.reason.startswith("hash mismatch")

    async def rehash(session: AsyncSession) -> None:  # altered and re-hashed: the next entry no longer links
        forged = SimpleNamespace(**{c: getattr(target, c) for c in (
            "seq", "citizen_person_id", "agency", "fields", "workflow_id", "accessed_at")}, purpose="nothing to see")
        await session.execute(update(DataAccess).where(DataAccess.id == target.id).values(
            purpose=forged.purpose, hash=entry_hash(target.prev_hash, forged)))

    relinked = await _tamper(owner_engine, rehash)
    assert not relinked.intact and relinked.broken_seq == target.seq + 1
    assert relinked.reason and relinked.reason.startswith("prev_hash mismatch")

    async def remove(session: AsyncSession) -> None:
        await session.execute(delete(DataAccess).where(DataAccess.id == target.id))

    deleted = await _tamper(owner_engine, remove)
    assert not deleted.intact and deleted.broken_seq == target.seq + 1
    assert deleted.reason and deleted.reason.startswith("gap in seq")

    async with service.registry.unit_of_work() as session:
        assert (await verify_ledger(session)).intact


async def test_verify_ledger_command_exits_1_on_a_broken_chain(settings: Settings, service: Any,
                                                             owner_engine: AsyncEngine,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, workflow_id = await _birth(settings, service, 99)
    target = (await _entries(service, workflow_id))[-1]
    args = argparse.Namespace(json=False)
    assert await cmd_verify_ledger(settings, args) == 0
    try:
        async with AsyncSession(owner_engine) as session, session.begin():
            await session.execute(update(DataAccess).where(DataAccess.id == target.id).values(purpose="altered"))
        assert await cmd_verify_ledger(settings, args) == 1
        assert f"BROKEN at seq {target.seq} (id {target.id}): hash mismatch" in capsys.readouterr().out
    finally:
        async with AsyncSession(owner_engine) as session, session.begin():
            await session.execute(update(DataAccess).where(DataAccess.id == target.id).values(purpose=target.purpose))
    assert await cmd_verify_ledger(settings, args) == 0


async def test_data_usage_lists_accesses_newest_first_and_is_itself_logged(settings: Settings, service: Any) -> None:
    child, workflow_id = await _birth(settings, service, 96)
    async with service.registry.unit_of_work() as session:
        first = await data_usage(session, child.personal_id_number, reader="test-citizen")
    assert first is not None and len(first) >= 5
    assert [e["at"] for e in first] == sorted((e["at"] for e in first), reverse=True)
    assert {e["workflow_id"] for e in first} == {workflow_id}
    assert {"identity", "health", "education"} <= {e["reader"] for e in first}
    async with service.registry.unit_of_work() as session:
        second = await data_usage(session, child.personal_id_number, reader="test-citizen")
    assert second is not None and second[0]["reader"] == "test-citizen"
    assert second[0]["purpose"] == "show the citizen's data usage" and second[1:] == first


async def test_reading_the_dead_letter_queue_is_logged(settings: Settings, service: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    async def dlq_reads() -> int:
        async with service.registry.unit_of_work() as session:
            return int(await session.scalar(select(func.count()).select_from(DataAccess).where(
                DataAccess.citizen_person_id.is_(None), DataAccess.purpose.like("read the dead-letter queue%"))) or 0)

    before = await dlq_reads()
    assert await cmd_dlq(settings, argparse.Namespace(json=True)) == 0
    capsys.readouterr()
    assert await dlq_reads() == before + 1


async def test_a_step_updating_a_person_and_a_notice_holding_it_do_not_deadlock_on_the_ledger(
        service: Any) -> None:
    """A notice holds the child's row FOR SHARE; a residence step updates that row; both write the ledger at their
    commit. The ledger entries go after the step's own changes, so the update waits for the notice, never the
    notice for a ledger lock the waiting update holds (PostgreSQL would abort one with "deadlock detected")."""
    import asyncio
    import uuid
    from datetime import date

    from activities.common import log_access
    from registry.models import Person

    child_id = uuid.uuid4()
    async with service.registry.unit_of_work() as session:
        session.add(Person(id=child_id, full_name="Phạm Minh Khoa", sex="male", date_of_birth=date(2026, 11, 3)))
    share_taken, update_sent = asyncio.Event(), asyncio.Event()

    async def waiting_on_a_lock() -> int:
        async with service.registry.unit_of_work() as session:
            return int(await session.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()")) or 0)

    async def notice() -> None:
        async with service.registry.unit_of_work() as session:
            await session.get(Person, child_id, with_for_update={"read": True})
            log_access(session, citizen=child_id, agency="notification", purpose="deadlock test: notice",
                       workflow_id=f"deadlock-{child_id}", fields="full_name")
            share_taken.set()
            await update_sent.wait()
            await eventually(waiting_on_a_lock, lambda n: n > 0, what="the residence step waiting on a lock")

    async def residence() -> None:
        await share_taken.wait()
        async with service.registry.unit_of_work() as session:
            child = await session.get(Person, child_id)
            assert child is not None
            child.preferred_language = "en"
            log_access(session, citizen=child_id, agency="residence", purpose="deadlock test: residence",
                       workflow_id=f"deadlock-{child_id}", fields="household")
            update_sent.set()

    await asyncio.wait_for(asyncio.gather(notice(), residence()), timeout=30)
    entries = await _entries(service, f"deadlock-{child_id}")
    assert sorted(e.agency for e in entries) == ["notification", "residence"]


async def test_a_transaction_with_several_entries_chains_each_and_writes_a_repeated_one_once(
        settings: Settings, service: Any) -> None:
    """A transaction's entries go to the ledger in one statement: each still gets its own place in the chain (seq
    one after the other, each prev_hash the hash before it), and a repeated entry in the same batch is written once."""
    def written(agency: str) -> float:
        return REGISTRY.get_sample_value("lifeevents_ledger_writes_total", {"agency": agency}) or 0.0

    workflow_id = "ledger-batch-test"
    async with service.registry.unit_of_work() as session:
        citizens = list((await session.scalars(select(Person.id).limit(2))).all())
    assert len(citizens) == 2
    before = written("batch-test")
    async with service.registry.unit_of_work() as session:
        for citizen, purpose in ((citizens[0], "first"), (citizens[1], "second"), (citizens[0], "first"),
                                 (citizens[0], "third")):
            log_access(session, citizen=citizen, agency="batch-test", purpose=purpose, workflow_id=workflow_id,
                       fields="full_name")
    entries = await _entries(service, workflow_id)
    assert [e.purpose for e in entries] == ["first", "second", "third"]
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + 3))
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert written("batch-test") - before == 3
    async with service.registry.unit_of_work() as session:
        assert (await verify_ledger(session)).intact
