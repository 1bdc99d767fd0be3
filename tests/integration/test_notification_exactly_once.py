"""A notice is delivered once per stage even when the notify activity runs again after a partial failure."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.notification import NatsNoticeGateway, RegistryNotificationAgency
from registry.models import InboxMessage, Notification, Person
from workflows.contracts import NoticeInput, Stage

pytestmark = pytest.mark.integration


class FlakyGateway:
    """Fails its first publish (as if NATS dropped the connection), then publishes."""

    def __init__(self, real: NatsNoticeGateway) -> None:
        self.real = real
        self.attempts = 0

    async def publish(self, notice: Notification) -> None:
        self.attempts += 1
        if self.attempts == 1:
            raise ConnectionError("NATS unavailable (scripted)")
        await self.real.publish(notice)


async def test_retried_notice_is_stored_delivered_and_published_once(service: Any, admin_js: Any) -> None:
    async with service.registry.unit_of_work() as session:
        child = Person(id=uuid.uuid4(), full_name="Trần Thị Bình", sex="female", date_of_birth=date(2026, 11, 1),
                       preferred_language="en")
        session.add(child)
    gateway = FlakyGateway(NatsNoticeGateway(service.js))
    agency = RegistryNotificationAgency(service.registry, gateway)
    notice = NoticeInput(child_person_id=child.id, workflow_id=f"birth-TEST{child.id.hex[:8]}",
                         stage=Stage.BIRTH_RECORDED)

    with pytest.raises(ConnectionError):
        await agency.notify_family(notice)
    first = await agency.notify_family(notice)   # the activity's retry
    second = await agency.notify_family(notice)  # a further retry after success
    assert first.notification_id == second.notification_id and second.newly_created is False
    assert gateway.attempts == 2  # the failed publish stored nothing; not published again once stored

    async with service.registry.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)
                                    .where(Notification.citizen_person_id == child.id)) == 1
        assert await session.scalar(select(func.count()).select_from(InboxMessage)
                                    .where(InboxMessage.notification_id == first.notification_id)) == 1
        stored = await session.get(Notification, first.notification_id)
    assert stored is not None and stored.published_at is not None
    assert stored.subject == "Birth of Trần Thị Bình registered" and "1 November 2026" in stored.body
    sub = await admin_js.subscribe(f"notify.inbox.{child.id}", ordered_consumer=True)
    msg = await sub.next_msg(timeout=5)
    assert "Nats-Msg-Id" not in (msg.headers or {})  # each attempt's announcement is kept (see the next test)
    announced = json.loads(msg.data)  # a reference: the text stays in the inbox, out of the stream
    assert announced["notification_id"] == str(first.notification_id) and announced["citizen"] == str(child.id)
    assert "subject" not in announced and "body" not in announced and "Bình" not in msg.data.decode()
    info = await admin_js.stream_info(service.settings.notify_stream, subjects_filter=f"notify.inbox.{child.id}")
    assert info.state.subjects == {f"notify.inbox.{child.id}": 1}
    await sub.unsubscribe()


class PublishThenCrash:
    """Publishes, then fails before the transaction commits (as if the worker died between the two)."""

    def __init__(self, real: NatsNoticeGateway) -> None:
        self.real = real
        self.announced: list[uuid.UUID] = []

    async def publish(self, notice: Notification) -> None:
        await self.real.publish(notice)
        self.announced.append(notice.id)
        if len(self.announced) == 1:
            raise ConnectionError("worker lost before the commit (scripted)")


async def test_announcement_repeated_after_a_lost_commit_carries_the_same_notification_id(
        service: Any, admin_js: Any) -> None:
    async with service.registry.unit_of_work() as session:
        child = Person(id=uuid.uuid4(), full_name="Lê Văn Cường", sex="male", date_of_birth=date(2026, 11, 2),
                       preferred_language="vi")
        session.add(child)
    gateway = PublishThenCrash(NatsNoticeGateway(service.js))
    agency = RegistryNotificationAgency(service.registry, gateway)
    notice = NoticeInput(child_person_id=child.id, workflow_id=f"birth-TEST{child.id.hex[:8]}",
                         stage=Stage.BIRTH_RECORDED)

    with pytest.raises(ConnectionError):
        await agency.notify_family(notice)
    async with service.registry.unit_of_work() as session:  # the lost commit left no row
        assert await session.scalar(select(func.count()).select_from(Notification)
                                    .where(Notification.citizen_person_id == child.id)) == 0
    outcome = await agency.notify_family(notice)  # the activity's retry announces again, under the same id
    assert gateway.announced == [outcome.notification_id, outcome.notification_id]
    async with service.registry.unit_of_work() as session:
        stored = await session.get(Notification, outcome.notification_id)
    assert stored is not None and stored.published_at is not None
    # both announcements are in the stream: the one of the attempt that committed was not dropped as a duplicate of
    # the lost one (which names a notice never committed, and would end dead-lettered: the notice never pushed)
    info = await admin_js.stream_info(service.settings.notify_stream, subjects_filter=f"notify.inbox.{child.id}")
    assert info.state.subjects == {f"notify.inbox.{child.id}": 2}


class Recording:
    """Keeps every announcement instead of publishing it."""

    def __init__(self) -> None:
        self.announced: list[uuid.UUID] = []

    async def publish(self, notice: Notification) -> None:
        self.announced.append(notice.id)


async def _child_with_mother(service: Any, name: str) -> Person:
    async with service.registry.unit_of_work() as session:
        mother = Person(id=uuid.uuid4(), full_name="Phạm Thị Hoa", sex="female", date_of_birth=date(1995, 3, 4))
        child = Person(id=uuid.uuid4(), full_name=name, sex="female", date_of_birth=date(2026, 11, 3),
                       mother_id=mother.id, preferred_language="en")
        session.add_all([mother, child])
    return child


async def test_concurrent_attempts_at_one_notice_store_it_once_and_deliver_it_once_per_recipient(
        service: Any) -> None:
    child = await _child_with_mother(service, "Võ Thị Lan")
    gateway = Recording()
    agency = RegistryNotificationAgency(service.registry, gateway)
    notice = NoticeInput(child_person_id=child.id, workflow_id=f"birth-TEST{child.id.hex[:8]}",
                         stage=Stage.BIRTH_RECORDED)

    outcomes = await asyncio.gather(*(agency.notify_family(notice) for _ in range(4)))

    assert len({o.notification_id for o in outcomes}) == 1
    assert sum(o.newly_created for o in outcomes) == 1
    assert gateway.announced == [outcomes[0].notification_id]
    async with service.registry.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)
                                    .where(Notification.citizen_person_id == child.id)) == 1
        inbox = (await session.execute(select(InboxMessage.recipient_person_id, InboxMessage.recipient_role)
                                       .where(InboxMessage.notification_id == outcomes[0].notification_id))).all()
    assert inbox == [(child.mother_id, "mother")]


async def test_a_notice_stored_before_announcements_is_delivered_and_announced_once_on_retry(
        service: Any) -> None:
    """A row from before notices were announced inside their transaction: its own id, no inbox row, never
    published. The retry delivers and announces that notice (not a new one), and marks it published."""
    child = await _child_with_mother(service, "Đỗ Thị Mai")
    workflow_id = f"birth-TEST{child.id.hex[:8]}"
    legacy = Notification(id=uuid.uuid4(), dedupe_key=f"{workflow_id}/birth_recorded", citizen_person_id=child.id,
                          recipient_person_id=child.mother_id, stage="birth_recorded", language="en",
                          subject="stored earlier", body="stored earlier\n")
    async with service.registry.unit_of_work() as session:
        session.add(legacy)
    gateway = Recording()
    agency = RegistryNotificationAgency(service.registry, gateway)
    notice = NoticeInput(child_person_id=child.id, workflow_id=workflow_id, stage=Stage.BIRTH_RECORDED)

    first = await agency.notify_family(notice)
    second = await agency.notify_family(notice)

    assert (first.notification_id, first.newly_created) == (legacy.id, False)
    assert second.notification_id == legacy.id and gateway.announced == [legacy.id]
    async with service.registry.unit_of_work() as session:
        stored = await session.get(Notification, legacy.id)
        recipients = (await session.scalars(select(InboxMessage.recipient_person_id)
                                            .where(InboxMessage.notification_id == legacy.id))).all()
    assert stored is not None and stored.published_at is not None and stored.subject == "stored earlier"
    assert recipients == [child.mother_id]


async def test_every_stream_forgets(service: Any, admin_js: Any) -> None:
    settings = service.settings
    for stream, days in ((settings.civil_stream, settings.civil_retention_days),
                         (settings.health_stream, settings.health_retention_days),
                         (settings.dlq_stream, settings.dlq_retention_days),
                         (settings.notify_stream, settings.notify_retention_days)):
        info = await admin_js.stream_info(stream)
        assert info.config.max_age == pytest.approx(days * 24 * 3600), stream
