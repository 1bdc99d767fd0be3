"""The notice dispatcher on the real NATS and PostgreSQL: each notice pushed once per notification id, whatever
JetStream's duplicate window; an unreadable announcement dead-lettered without stopping the ones after it."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

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


class FakeMsg:
    """An announcement as one fetch hands it over: records how it ended."""

    def __init__(self, notification_id: uuid.UUID | str, sequence: int, delivered: int = 1) -> None:
        self.data = json.dumps({"notification_id": str(notification_id)}).encode()
        self.subject = f"notify.inbox.{uuid.uuid4()}"
        self.headers: dict[str, str] = {}
        self.metadata = SimpleNamespace(num_delivered=delivered, sequence=SimpleNamespace(stream=sequence))
        self.ended: list[str] = []

    async def ack(self) -> None:
        self.ended.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.ended.append("nak")


async def test_one_fetch_is_dispatched_together_each_announcement_ending_on_its_own(
        settings: Settings, service: Any) -> None:
    """A fetch holding a notice twice, a notice not stored (yet) and one already pushed: the first is pushed once
    (the second announcement counts as a repeat), the unknown one comes back later, the old one is a repeat."""
    fresh, old = (await _birth_notices(settings, service, 41))[:2]
    await eventually(lambda: _dispatches(service, [fresh.id, old.id]), lambda d: len(d) == 2,
                     what="the running dispatcher pushed the birth's notices")
    async with service.registry.unit_of_work() as session:  # as if `fresh` had never been dispatched
        await session.execute(delete(NoticeDispatch).where(NoticeDispatch.notification_id == fresh.id))
        await session.execute(update(InboxMessage).where(InboxMessage.notification_id == fresh.id)
                              .values(pushed_at=None))
    unknown = uuid.uuid4()
    msgs = [FakeMsg(fresh.id, 9001), FakeMsg(unknown, 9002), FakeMsg(fresh.id, 9003), FakeMsg(old.id, 9004)]

    outcomes = await service.notice_dispatcher().handle_batch(msgs)  # type: ignore[arg-type]

    assert outcomes == ["pushed", "retried", "repeat", "repeat"]
    assert [m.ended for m in msgs] == [["ack"], ["nak"], ["ack"], ["ack"]]
    rows = await _dispatches(service, [fresh.id, old.id, unknown])
    assert set(rows) == {fresh.id, old.id}
    assert (rows[fresh.id].stream_sequence, rows[fresh.id].repeats_seen, rows[fresh.id].recipients >= 1) == (
        9001, 1, True)
    assert rows[old.id].repeats_seen == 1
    async with service.registry.unit_of_work() as session:
        unpushed = await session.scalar(select(func.count()).select_from(InboxMessage).where(
            InboxMessage.notification_id == fresh.id, InboxMessage.pushed_at.is_(None)))
    assert unpushed == 0
