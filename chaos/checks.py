"""What must hold after a chaos run: every birth done exactly once, every stream message accounted for, nothing
stuck. Each check reports its figures and whether it passed; none prints personal data."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute
from temporalio.client import Client, WorkflowExecutionStatus

from events.bridge import ORIGINAL_SEQUENCE_HEADER, ORIGINAL_SUBJECT_HEADER, Consumer, consumers
from events.notice_dispatch import INBOX_SUBJECTS
from events.streams import CIVIL_SUBJECTS
from infra.settings import Settings
from registry.births import birth_workflow_id
from registry.db import Registry
from registry.models import (
    BirthRegistration,
    HealthInsuranceCard,
    IdentityNumber,
    InboxMessage,
    NoticeDispatch,
    Notification,
    PlannedVaccination,
    ReceivedEvent,
    ResidencePeriod,
    ResidenceRegistration,
)
from workflows.contracts import BIRTH_STAGES

HISTORY_SAMPLE = 50
"""Births whose histories are read to see which worker processes ran their activities."""


@dataclass(frozen=True)
class BirthRef:
    province_code: str
    registration_number: str

    @property
    def workflow_id(self) -> str:
        return birth_workflow_id(self.province_code, self.registration_number)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    figures: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.figures}"


def _exactly_one_each(name: str, counts: Mapping[Any, int], expected: Sequence[Any]) -> Check:
    missing = sum(1 for key in expected if counts.get(key, 0) == 0)
    doubled = sum(1 for key in expected if counts.get(key, 0) > 1)
    extra = sum(1 for key in counts if key not in set(expected))
    return Check(name, missing == doubled == extra == 0,
                 f"{len(expected) - missing - doubled}/{len(expected)} exactly one, {missing} missing, "
                 f"{doubled} more than one, {extra} unexpected")


async def registry_checks(registry: Registry, births: Sequence[BirthRef]) -> list[Check]:
    keys = [(b.province_code, b.registration_number) for b in births]
    numbers = [b.registration_number for b in births]
    async with registry.unit_of_work() as session:
        regs = (await session.execute(
            select(BirthRegistration.province_code, BirthRegistration.registration_number,
                   BirthRegistration.child_person_id)
            .where(BirthRegistration.registration_number.in_(numbers)))).all()
        children = [child for _, _, child in regs if child is not None]

        async def per_child(column: InstrumentedAttribute[uuid.UUID]) -> Counter[uuid.UUID]:
            rows = (await session.execute(select(column, func.count()).where(column.in_(children))
                                          .group_by(column))).all()
            return Counter({key: int(n) for key, n in rows})

        id_numbers = (await session.execute(
            select(IdentityNumber.person_id, IdentityNumber.number).where(IdentityNumber.person_id.in_(children))
        )).all()
        cards = await per_child(HealthInsuranceCard.person_id)
        residences = await per_child(ResidenceRegistration.person_id)
        periods = await per_child(ResidencePeriod.person_id)
        doses = (await session.execute(
            select(PlannedVaccination.person_id, PlannedVaccination.vaccine, PlannedVaccination.dose, func.count())
            .where(PlannedVaccination.person_id.in_(children))
            .group_by(PlannedVaccination.person_id, PlannedVaccination.vaccine, PlannedVaccination.dose))).all()
        notices = (await session.execute(
            select(Notification.citizen_person_id, Notification.stage, func.count(),
                   func.count(Notification.published_at))
            .where(Notification.citizen_person_id.in_(children))
            .group_by(Notification.citizen_person_id, Notification.stage))).all()
        inbox = (await session.execute(
            select(InboxMessage.notification_id, InboxMessage.recipient_person_id, func.count())
            .join(Notification, Notification.id == InboxMessage.notification_id)
            .where(Notification.citizen_person_id.in_(children))
            .group_by(InboxMessage.notification_id, InboxMessage.recipient_person_id))).all()
        dispatches = (await session.execute(
            select(Notification.id, NoticeDispatch.recipients, NoticeDispatch.repeats_seen)
            .outerjoin(NoticeDispatch, NoticeDispatch.notification_id == Notification.id)
            .where(Notification.citizen_person_id.in_(children)))).all()
        not_pushed = int(await session.scalar(
            select(func.count()).select_from(InboxMessage)
            .join(Notification, Notification.id == InboxMessage.notification_id)
            .where(Notification.citizen_person_id.in_(children), InboxMessage.pushed_at.is_(None))) or 0)
        notices_without_inbox = int(await session.scalar(
            select(func.count()).select_from(Notification)
            .where(Notification.citizen_person_id.in_(children),
                   ~Notification.id.in_(select(InboxMessage.notification_id)))) or 0)

    checks = [_exactly_one_each("one registration per birth, with its child",
                                Counter((p, n) for p, n, child in regs if child is not None), keys)]
    ids_per_child = Counter(person for person, _ in id_numbers)
    all_numbers = [number for _, number in id_numbers]
    checks.append(Check("one ID number per child, all distinct",
                        len(children) == len(births) and all(ids_per_child.get(c) == 1 for c in children)
                        and len(set(all_numbers)) == len(all_numbers) == len(births),
                        f"{sum(1 for c in children if ids_per_child.get(c) == 1)}/{len(births)} children with one, "
                        f"{len(set(all_numbers))} distinct of {len(all_numbers)} numbers"))
    checks.append(_exactly_one_each("one health insurance card per child", cards, children))
    checks.append(_exactly_one_each("one residence registration per child", residences, children))
    checks.append(_exactly_one_each("one residence period per child", periods, children))
    planned = Counter(person for person, *_ in doses)
    duplicate_doses = sum(1 for *_, n in doses if n > 1)
    checks.append(Check("a vaccination plan per child, no duplicate (vaccine, dose)",
                        duplicate_doses == 0 and all(planned.get(c, 0) > 0 for c in children) and bool(children),
                        f"{sum(1 for c in children if planned.get(c, 0) > 0)}/{len(children)} children planned, "
                        f"{sum(planned.values())} doses, {duplicate_doses} duplicated"))
    per_stage = Counter({(child, stage): int(n) for child, stage, n, _ in notices})
    expected_notices = [(child, stage.value) for child in children for stage in BIRTH_STAGES]
    checks.append(_exactly_one_each(f"one notice per child per stage ({len(BIRTH_STAGES)} stages)", per_stage,
                                    expected_notices))
    unpublished = sum(n - published for *_, n, published in notices)
    checks.append(Check("every notice announced on the NOTIFY stream", unpublished == 0 and bool(notices),
                        f"{sum(n for *_, n, _ in notices)} notices, {unpublished} not published"))
    doubled_inbox = sum(1 for *_, n in inbox if n > 1)
    checks.append(Check("each notice in each recipient's inbox once", doubled_inbox == 0 and notices_without_inbox == 0
                        and bool(inbox), f"{len(inbox)} inbox messages, {doubled_inbox} duplicated, "
                                         f"{notices_without_inbox} notices with no recipient"))
    checks.append(notices_pushed_once(dispatches, Counter(notification for notification, *_ in inbox), not_pushed))
    return checks


def notices_pushed_once(dispatches: Sequence[Any], inbox_per_notice: Mapping[uuid.UUID, int], not_pushed: int) -> Check:
    """Each notice claimed once by the notice dispatcher (its row), pushed to exactly the recipients in its inbox;
    a repeated announcement (a redelivery after a kill) is only counted, never pushed again."""
    undispatched = sum(1 for _, recipients, _ in dispatches if recipients is None)
    miscounted = sum(1 for notification, recipients, _ in dispatches
                     if recipients is not None and recipients != inbox_per_notice.get(notification, 0))
    repeats = sum(n or 0 for *_, n in dispatches)
    return Check("each notice pushed to its recipients once by the dispatcher",
                 bool(dispatches) and undispatched == miscounted == not_pushed == 0,
                 f"{len(dispatches) - undispatched}/{len(dispatches)} notices dispatched, {miscounted} pushed to "
                 f"another number of recipients than their inbox, {not_pushed} inbox messages not pushed, "
                 f"{repeats} repeated announcements seen and not pushed again")


async def workflow_checks(client: Client, births: Sequence[BirthRef]) -> list[Check]:
    runs: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    async for execution in client.list_workflows("LifeEvent = 'birth'"):
        runs[execution.id] += 1
        statuses[execution.status.name if execution.status else "UNKNOWN"] += 1
    completed = statuses.get(WorkflowExecutionStatus.COMPLETED.name, 0)
    one_each = _exactly_one_each("one birth workflow run per registration", runs, [b.workflow_id for b in births])
    checks = [one_each, Check("every birth workflow completed", completed == len(births) == sum(statuses.values()),
                              ", ".join(f"{s.lower()} {n}" for s, n in sorted(statuses.items())) or "none")]
    lifecycles = (await client.count_workflows(
        "WorkflowType = 'CitizenLifecycleWorkflow' AND ExecutionStatus = 'Running'")).count
    checks.append(Check("one running citizen lifecycle per child", lifecycles == len(births),
                        f"{lifecycles} for {len(births)} children"))
    others = (await client.count_workflows(
        "ExecutionStatus = 'Running' AND WorkflowType != 'CitizenLifecycleWorkflow'")).count
    attention = (await client.count_workflows("NeedsAttention = true")).count
    checks.append(Check("nothing stuck: no other workflow running, none needs attention", others == attention == 0,
                        f"{others} running, {attention} needing attention"))
    checks.append(await work_sharing_check(client, births[:HISTORY_SAMPLE], 2))
    return checks


async def work_sharing_check(client: Client, births: Sequence[BirthRef], least: int) -> Check:
    """Which worker processes (Temporal identities, `pid@host`) ran the steps of these births: a regular activity
    names its worker when it starts; local steps run in the worker that completes the workflow task holding them."""
    identities: set[str] = set()
    for birth in births:
        async for event in client.get_workflow_handle(birth.workflow_id).fetch_history_events():
            if event.HasField("activity_task_started_event_attributes"):
                identities.add(event.activity_task_started_event_attributes.identity)
            elif event.HasField("workflow_task_completed_event_attributes"):
                identities.add(event.workflow_task_completed_event_attributes.identity)
    return Check("work shared by several worker processes", len(identities) >= least,
                 f"steps of {len(births)} births ran in {len(identities)} worker processes")


def is_civil_subject(subject: str) -> bool:
    """A subject of the CIVIL stream (`civil.>`): the dead-letter stream also keeps the notice dispatcher's."""
    return subject.startswith(CIVIL_SUBJECTS.removesuffix(">"))


async def stream_checks(settings: Settings, js: JetStreamContext, registry: Registry,
                        published_sequences: Sequence[int]) -> list[Check]:
    """Each CIVIL message is a received event in the registry or a dead letter (by its original sequence); the
    bridge's consumers and the notice dispatcher's hold nothing pending or unacknowledged."""
    info = await js.stream_info(settings.civil_stream)
    first, last = max(1, info.state.first_seq), info.state.last_seq
    dead_sequences: set[int] = set()
    try:
        dlq = await js.stream_info(settings.dlq_stream)
        for seq in range(max(1, dlq.state.first_seq), dlq.state.last_seq + 1):
            with_headers = await js.get_msg(settings.dlq_stream, seq)
            headers = with_headers.headers or {}
            original = headers.get(ORIGINAL_SEQUENCE_HEADER)
            if original and original.isdigit() and is_civil_subject(headers.get(ORIGINAL_SUBJECT_HEADER, "")):
                dead_sequences.add(int(original))  # the notice dispatcher's dead letters have NOTIFY sequences
    except NotFoundError:
        pass
    async with registry.unit_of_work() as session:
        received = set((await session.execute(select(ReceivedEvent.event_source, ReceivedEvent.event_id))).all())
    accounted = dead = gaps = 0
    for seq in range(first, last + 1):
        try:
            msg = await js.get_msg(settings.civil_stream, seq)
        except NotFoundError:
            gaps += 1
            continue
        if seq in dead_sequences:
            dead += 1
            continue
        document = json.loads(msg.data or b"{}")
        if (document.get("source"), document.get("id")) in received:
            accounted += 1
    total = last - first + 1 if last >= first else 0
    unpublished = [s for s in published_sequences if not first <= s <= last]
    checks = [Check("every CIVIL stream sequence accounted for", accounted + dead == total and gaps == 0
                    and not unpublished and total == len(published_sequences),
                    f"sequences {first}..{last}: {accounted} received events + {dead} dead letters = "
                    f"{accounted + dead}/{total}, {gaps} gaps, {len(published_sequences)} published")]
    figures, drained = [], True
    for consumer in [*consumers(settings), Consumer(settings.notify_stream, INBOX_SUBJECTS,
                                                     settings.notice_dispatch_durable)]:
        state = await js.consumer_info(consumer.stream, consumer.durable)
        figures.append(f"{consumer.durable}: {state.num_pending} pending, {state.num_ack_pending} unacked, "
                       f"{state.num_redelivered} redelivered")
        drained = drained and state.num_pending == 0 and state.num_ack_pending == 0
    checks.append(Check("bridge and notice-dispatch consumers drained", drained, "; ".join(figures)))
    return checks
