"""A notice is delivered once per stage even when the notify activity runs again after a partial failure."""

from __future__ import annotations

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
    assert msg.headers and msg.headers["Nats-Msg-Id"] == f"{notice.workflow_id}/birth_recorded"
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


async def test_every_stream_forgets(service: Any, admin_js: Any) -> None:
    settings = service.settings
    for stream, days in ((settings.civil_stream, settings.civil_retention_days),
                         (settings.health_stream, settings.health_retention_days),
                         (settings.dlq_stream, settings.dlq_retention_days),
                         (settings.notify_stream, settings.notify_retention_days)):
        info = await admin_js.stream_info(stream)
        assert info.config.max_age == pytest.approx(days * 24 * 3600), stream
