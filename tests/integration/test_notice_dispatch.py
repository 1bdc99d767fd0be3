"""The notice dispatcher on the real NATS and PostgreSQL: each notice pushed once per notification id, whatever
JetStream's duplicate window; an unreadable announcement dead-lettered without stopping the ones after it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from infra.metrics import NOTICE_DISPATCHES
from infra.settings import Settings
from registry.models import InboxMessage, NoticeDispatch, Notification
from starter import publish_raw
from tests.helpers import eventually
from tests.integration.test_birth_end_to_end import birth_event, child_of, wait_all_stages

pytestmark = pytest.mark.integration


async def _dispatches(service: Any, notification_ids: list[uuid.UUID]) -> dict[uuid.UUID, NoticeDispatch]:
    async with service.registry.unit_of_work() as session:
        rows = (await session.scalars(select(NoticeDispatch)
                                      .where(NoticeDispatch.notification_id.in_(notification_ids)))).all()
    return {row.notification_id: row for row in rows}


async def _birth_notices(settings: Settings, service: Any, fam_index: int) -> list[Notification]:
    reg, raw = birth_event(fam_index)
    await publish_raw(settings, [raw], progress=False)
    await wait_all_stages(service, [reg])
    child = await child_of(service, reg)
    async with service.registry.unit_of_work() as session:
        return list((await session.scalars(select(Notification)
                                           .where(Notification.citizen_person_id == child.id))).all())


async def test_each_notice_of_a_birth_is_pushed_once_to_every_recipient(settings: Settings, service: Any) -> None:
    notices = await _birth_notices(settings, service, 31)
    assert len(notices) == 6
    ids = [n.id for n in notices]
    pushed = await eventually(lambda: _dispatches(service, ids), lambda d: len(d) == 6, what="six notices pushed")
    assert all(d.repeats_seen == 0 and d.recipients >= 1 for d in pushed.values())
    async with service.registry.unit_of_work() as session:
        inbox = (await session.scalars(select(InboxMessage).where(InboxMessage.notification_id.in_(ids)))).all()
    assert inbox and all(m.pushed_at is not None for m in inbox)
    assert sum(d.recipients for d in pushed.values()) == len(inbox)


async def test_an_announcement_repeated_past_the_duplicate_window_is_not_pushed_again(
        settings: Settings, service: Any) -> None:
    notice = (await _birth_notices(settings, service, 32))[0]
    first = (await eventually(lambda: _dispatches(service, [notice.id]), lambda d: notice.id in d,
                              what="the notice pushed"))[notice.id]
    async with service.registry.unit_of_work() as session:
        pushed_at = {m.id: m.pushed_at for m in (await session.scalars(
            select(InboxMessage).where(InboxMessage.notification_id == notice.id))).all()}
    repeats_before = NOTICE_DISPATCHES.labels("repeat")._value.get()

    # the same notice announced again under another message id: what JetStream lets through once its window passed
    body = json.dumps({"notification_id": str(notice.id), "citizen": str(notice.citizen_person_id)}).encode()
    for attempt in range(2):
        await service.js.publish(f"notify.inbox.{notice.citizen_person_id}", body,
                                 headers={"Nats-Msg-Id": f"after-the-window-{uuid.uuid4()}-{attempt}"})

    again = (await eventually(lambda: _dispatches(service, [notice.id]),
                              lambda d: d[notice.id].repeats_seen == 2, what="both repeats seen"))[notice.id]
    assert again.stream_sequence == first.stream_sequence and again.dispatched_at == first.dispatched_at
    assert NOTICE_DISPATCHES.labels("repeat")._value.get() == repeats_before + 2
    async with service.registry.unit_of_work() as session:
        assert {m.id: m.pushed_at for m in (await session.scalars(
            select(InboxMessage).where(InboxMessage.notification_id == notice.id))).all()} == pushed_at


async def test_an_unreadable_announcement_is_dead_lettered_and_the_next_one_is_pushed(
        settings: Settings, service: Any, admin_js: Any) -> None:
    citizen = uuid.uuid4()
    subject = f"notify.inbox.{citizen}"
    await service.js.publish(subject, b"{not json", headers={"Nats-Msg-Id": f"garbled-{citizen}"})
    await service.js.publish(subject, json.dumps({"notification_id": "not-a-uuid"}).encode(),
                             headers={"Nats-Msg-Id": f"bad-id-{citizen}"})
    notice = (await _birth_notices(settings, service, 33))[0]  # announced after the two bad ones

    async def dead_letters() -> list[str]:
        reasons = []
        info = await admin_js.stream_info(settings.dlq_stream)
        for seq in range(max(1, info.state.first_seq), info.state.last_seq + 1):
            msg = await admin_js.get_msg(settings.dlq_stream, seq)
            if msg.subject == f"dlq.{subject}":
                reasons.append((msg.headers or {}).get("Dead-Letter-Reason", ""))
        return reasons

    reasons = await eventually(dead_letters, lambda r: len(r) == 2, what="both bad announcements dead-lettered")
    assert sorted(reasons) == ["body: not JSON (JSONDecodeError)", "notification_id: not a UUID"]
    await eventually(lambda: _dispatches(service, [notice.id]), lambda d: notice.id in d,
                     what="the good notice after them pushed")
