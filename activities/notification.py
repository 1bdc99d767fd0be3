"""Notification agency: one notice to the family after each stage, exactly once.

The notice is rendered from a jinja2 template in the family's language, written to the outbox under the
dedupe key `<workflow id>/<stage>` (unique), delivered to the in-app inbox (unique per notice) and announced on
NATS under its notification id (derived from the key) for the notice dispatcher. A retried activity finds the row
that is already there and only repeats the idempotent delivery steps.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import jinja2
from opentelemetry.trace import SpanKind
from sqlalchemy import String, Uuid, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

import rules
from activities.common import (
    WRITTEN_CARD,
    WRITTEN_FORECAST,
    WRITTEN_PLAN,
    log_access,
    registered_on,
    require_child,
)
from infra.metrics import NOTICES
from infra.settings import PROJECT_ROOT
from infra.telemetry import current_trace_headers, tracer
from registry.db import Registry, table_of, transaction_memo
from registry.models import (
    Address,
    HealthInsuranceCard,
    Household,
    InboxMessage,
    Notification,
    Person,
    PlannedVaccination,
    SchoolEntryForecast,
)
from workflows.contracts import NoticeInput, NoticeOutcome, Stage

AGENCY = "notification"
log = logging.getLogger("lifeevents.notification")
TEMPLATE_DIR = PROJECT_ROOT / "templates" / "notices"
LANGUAGES = ("vi", "en")


NOTIFICATION_IDS = uuid.UUID("6d1f0c2e-8a4b-5c3d-9e7f-1a2b3c4d5e6f")


def notification_id_for(dedupe_key: str) -> uuid.UUID:
    """The notice's id, derived from its dedupe key: every attempt to send the same notice announces the same id,
    so the dispatcher can tell a repeated announcement from a new notice whatever JetStream's window."""
    return uuid.uuid5(NOTIFICATION_IDS, dedupe_key)


class NoticeGateway(Protocol):
    """Where delivered notices are announced to the app gateway."""

    async def publish(self, notice: Notification) -> None: ...


class NotificationAgency(Protocol):
    async def notify_family(self, inp: NoticeInput) -> NoticeOutcome: ...


class NatsNoticeGateway:
    def __init__(self, jetstream: Any, subject_prefix: str = "notify.inbox") -> None:
        self.js = jetstream
        self.subject_prefix = subject_prefix

    async def publish(self, notice: Notification) -> None:
        """A reference, not the text: the app gateway reads the notice from the inbox by its id, so the stream
        holds no name, number or address.

        No `Nats-Msg-Id`: every attempt's announcement is kept. The notice is announced inside the transaction that
        stores it; when that transaction rolls back (a worker killed, PostgreSQL restarted), the attempt that
        commits announces it again under the same notification id, and JetStream's duplicate window would drop
        that second announcement as a repeat of the first, which names a notice that was never committed, is
        redelivered in vain and ends dead-lettered: the notice would never be pushed. The dispatcher de-duplicates
        by notification id instead (`events.notice_dispatch`), whatever the window."""
        body = json.dumps({
            "notification_id": str(notice.id), "citizen": str(notice.citizen_person_id),
            "recipient": str(notice.recipient_person_id) if notice.recipient_person_id else None,
            "stage": notice.stage, "language": notice.language,
        }).encode()
        with tracer().start_as_current_span(f"publish {self.subject_prefix}", kind=SpanKind.PRODUCER,
                                            attributes={"messaging.system": "nats", "lifeevents.stage": notice.stage}):
            await self.js.publish(f"{self.subject_prefix}.{notice.citizen_person_id}", body,
                                  headers=current_trace_headers())


class NoticeRenderer:
    """Renders `templates/notices/<lang>/<stage>.txt.j2`: the first line is the subject, the rest the body."""

    def __init__(self, template_dir: Path = TEMPLATE_DIR) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)),
                                      undefined=jinja2.StrictUndefined, autoescape=False,
                                      keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True,
                                      auto_reload=False)  # templates are part of a release: no stat per notice
        self.env.filters["date"] = _format_date

    def render(self, stage: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
        lang = language if language in LANGUAGES else "vi"
        text = self.env.get_template(f"{lang}/{stage}.txt.j2").render(**context, lang=lang)
        subject, _, body = text.strip().partition("\n")
        return subject.strip(), body.strip() + "\n"


def _format_date(value: date | None, lang: str = "vi") -> str:
    if value is None:
        return "—"
    return value.strftime("%d/%m/%Y") if lang == "vi" else value.strftime("%d %B %Y")


ContextBuilder = Callable[[AsyncSession, Person], Awaitable[dict[str, Any]]]
ADULT_AGE = 14
"""From this age the citizen receives their own notices too (the age of the mandatory identity card)."""


AFTER_DEATH = frozenset({"death_registered"})
"""The only notices about a citizen that still go out once their death is recorded."""


_STATUS_OF = select(Person.id, Person.status).where(Person.id == any_(bindparam("ids", type_=ARRAY(Uuid()))))
"""Built once: the statement is the same for every notice (SQLAlchemy caches its compiled form, not its
construction, which cost more than the query); an array parameter instead of an expanding IN list."""
_MOTHER, _FATHER, _DECLARANT = (aliased(Person, name=n) for n in ("mother", "father", "declarant"))
_CITIZEN_FOR_NOTICE = (
    select(Person,
           select(_MOTHER.status).where(_MOTHER.id == Person.mother_id).scalar_subquery(),
           select(_FATHER.status).where(_FATHER.id == Person.father_id).scalar_subquery(),
           select(_DECLARANT.status).where(_DECLARANT.id == bindparam("declarant", type_=Uuid())).scalar_subquery())
    .where(Person.id == bindparam("citizen")).with_for_update(read=True, of=Person)
    .execution_options(populate_existing=True))
"""The citizen, locked FOR SHARE (a death being recorded waits for this send, a send after it sees the death),
and the status of each parent and of the declarant, in one round trip; the parents' rows are not locked."""
_INSERT_INBOX = insert(table_of(InboxMessage)).on_conflict_do_nothing(
    constraint="uq_inbox_messages_notification_recipient")
_STORE_AND_DELIVER = text("""
WITH new_notice AS (
    INSERT INTO notifications (id, dedupe_key, citizen_person_id, recipient_person_id, stage, language, subject,
                               body, published_at)
    VALUES (:id, :dedupe_key, :citizen_person_id, :recipient_person_id, :stage, :language, :subject, :body,
            :published_at)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, published_at),
notice AS (
    SELECT id, published_at FROM new_notice
    UNION ALL
    SELECT id, published_at FROM notifications WHERE dedupe_key = :dedupe_key),
delivered AS (
    INSERT INTO inbox_messages (notification_id, recipient_person_id, recipient_role, channel)
    SELECT notice.id, r.person, r.role, 'app'
    FROM notice, unnest(CAST(:people AS uuid[]), CAST(:roles AS varchar[])) AS r(person, role)
    ON CONFLICT ON CONSTRAINT uq_inbox_messages_notification_recipient DO NOTHING)
SELECT notice.id, notice.published_at, EXISTS (SELECT 1 FROM new_notice) AS newly FROM notice
""").bindparams(bindparam("people", type_=ARRAY(Uuid())), bindparam("roles", type_=ARRAY(String())))
"""The notice stored under its key (or the one already there) and delivered to every inbox, in one statement.
The inbox rows reference the notice inserted beside them: the foreign key is checked at the statement's end.
No row comes back only when a concurrent attempt stored the notice while this statement ran (its snapshot
predates that row); the caller then takes the step-by-step path."""
_NOTICE_BY_KEY = select(Notification).where(Notification.dedupe_key == bindparam("key"))
_CARD_OF = (select(HealthInsuranceCard.card_number, HealthInsuranceCard.valid_from, HealthInsuranceCard.valid_until)
            .where(HealthInsuranceCard.person_id == bindparam("person")))
_PLAN_OF = (select(PlannedVaccination.vaccine, PlannedVaccination.dose, PlannedVaccination.due_date,
                   PlannedVaccination.overdue_at_planning, PlannedVaccination.flag)
            .where(PlannedVaccination.person_id == bindparam("person"))
            .order_by(PlannedVaccination.due_date, PlannedVaccination.vaccine, PlannedVaccination.dose))


async def _citizen_for_notice(session: AsyncSession, citizen_id: uuid.UUID,
                              declarant_id: uuid.UUID | None) -> tuple[Person, str | None, str | None, str | None]:
    """The citizen (locked FOR SHARE) and the parents' and declarant's status: read and locked once per
    transaction, however many notices it sends (a birth's stages at once send six); the lock holds to the end."""
    known = transaction_memo(session, "citizen_for_notice")
    if (citizen_id, declarant_id) not in known:
        found = (await session.execute(_CITIZEN_FOR_NOTICE, {"citizen": citizen_id,
                                                             "declarant": declarant_id})).first()
        if found is None:
            await require_child(session, citizen_id)  # raises: the record is missing
        known[citizen_id, declarant_id] = tuple(found)  # type: ignore[arg-type]
    return known[citizen_id, declarant_id]  # type: ignore[no-any-return]


async def recipients_of(session: AsyncSession, citizen: Person, on: date,
                        declarant_id: uuid.UUID | None = None,
                        status: dict[uuid.UUID, str] | None = None) -> list[tuple[uuid.UUID, str]]:
    """Every living parent on record, and the citizen once old enough (or when no parent is on record); for a
    deceased citizen, the parents and the declarant of the death instead. `status`: each parent's and the
    declarant's status when the caller has read them already (a person not on record is left out)."""
    out: list[tuple[uuid.UUID, str]] = []
    roles = [(pid, role) for pid, role in ((citizen.mother_id, "mother"), (citizen.father_id, "father"),
                                           (declarant_id, "declarant")) if pid is not None]
    if status is None:
        status = dict((await session.execute(_STATUS_OF, {"ids": [pid for pid, _ in roles]})).all()
                      ) if roles else {}  # one round trip for every parent
    for parent_id, role in roles:
        if parent_id in status and status[parent_id] != "deceased" and parent_id not in {p for p, _ in out}:
            out.append((parent_id, role))
    if citizen.status != "deceased" and (not out or rules.add_months(citizen.date_of_birth, 12 * ADULT_AGE) <= on):
        out.append((citizen.id, "citizen"))
    return out


class RegistryNotificationAgency:
    def __init__(self, registry: Registry, gateway: NoticeGateway, renderer: NoticeRenderer | None = None) -> None:
        self.registry = registry
        self.gateway = gateway
        self.renderer = renderer or NoticeRenderer()

    async def notify_family(self, inp: NoticeInput) -> NoticeOutcome:
        async def context(session: AsyncSession, child: Person) -> dict[str, Any]:
            return await notice_context(session, child, inp.stage)

        return await self.deliver(f"{inp.workflow_id}/{inp.stage.value}", inp.child_person_id, inp.stage.value,
                                  inp.workflow_id, context)

    async def deliver(self, key: str, citizen_id: uuid.UUID, kind: str, workflow_id: str,
                      build_context: ContextBuilder, *, on: date | None = None,
                      declarant_id: uuid.UUID | None = None) -> NoticeOutcome:
        """Render the notice `kind` once under `key`, deliver it to every recipient's inbox and announce it.

        One transaction: the announcement on NATS is published inside it, just before the commit, and the row is
        stored already marked published. A failed publish rolls everything back (the retry starts afresh); a
        commit that fails after the publish leaves an announcement the retry makes again under the same
        notification id (`notification_id_for(key)`), which the dispatcher and JetStream de-duplicate. A retry
        after the commit finds the row (its own rendering is dropped) and repeats only the idempotent inbox
        statement.
        """
        async with self.registry.unit_of_work() as session:
            citizen, mother_status, father_status, declarant_status = await _citizen_for_notice(
                session, citizen_id, declarant_id)
            if citizen.status == "deceased" and kind not in AFTER_DEATH:
                log.info("notice %s not sent: the citizen's death is recorded", kind)
                NOTICES.labels("withheld").inc()
                return NoticeOutcome(notification_id=None, newly_created=False)
            status = {pid: st for pid, st in ((citizen.mother_id, mother_status), (citizen.father_id, father_status),
                                              (declarant_id, declarant_status)) if pid is not None and st is not None}
            recipients = await recipients_of(session, citizen, on or rules.local_date(datetime.now(UTC)),
                                             declarant_id, status)
            step = key.removeprefix(f"{workflow_id}/")  # one entry per notice, also for repeated kinds
            log_access(session, citizen=citizen.id, agency=AGENCY, workflow_id=workflow_id,
                       purpose=f"notify family: {kind}" if step == kind else f"notify family: {kind} ({step})",
                       fields="full_name,preferred_language,contacts,parents")
            context = await build_context(session, citizen)
            subject, body = self.renderer.render(kind, citizen.preferred_language, context)
            row = {"id": notification_id_for(key), "dedupe_key": key, "citizen_person_id": citizen.id,
                   "recipient_person_id": recipients[0][0] if recipients else None, "stage": kind,
                   "language": citizen.preferred_language, "subject": subject, "body": body,
                   "published_at": datetime.now(UTC)}
            # Stored (or found, on a retry) and delivered in one statement: the ledger entry of a retry's read
            # is the same entry (unique per workflow, reader, purpose).
            stored = (await session.execute(_STORE_AND_DELIVER, {
                **row, "people": [pid for pid, _ in recipients], "roles": [role for _, role in recipients]})).first()
            newly = bool(stored and stored.newly)
            if newly:
                await self.gateway.publish(Notification(**row))
            if stored is not None and stored.published_at is not None:
                notification_id: uuid.UUID = stored.id
            else:
                notification_id = (await self._stored_notice(session, key, recipients)).id
        NOTICES.labels("sent" if newly else "resent").inc()
        return NoticeOutcome(notification_id=notification_id, newly_created=newly)

    async def _stored_notice(self, session: AsyncSession, key: str,
                             recipients: list[tuple[uuid.UUID, str]]) -> Notification:
        """The notice already stored under `key` (a retry, or a concurrent attempt that came first), delivered to
        every inbox, and announced if it was stored before notices were announced inside their transaction."""
        notice = await session.scalar(_NOTICE_BY_KEY, {"key": key})
        assert notice is not None
        if recipients:  # idempotent: the inbox rows may be there already
            await session.execute(_INSERT_INBOX, [
                {"notification_id": notice.id, "recipient_person_id": person_id, "recipient_role": role,
                 "channel": "app"} for person_id, role in recipients])
        if notice.published_at is None:
            await self.gateway.publish(notice)
            notice.published_at = datetime.now(UTC)
        return notice


async def notice_context(session: AsyncSession, child: Person, stage: Stage) -> dict[str, Any]:
    """What a notice may tell the family: read from the registry, never from the workflow."""
    ctx: dict[str, Any] = {"child_name": child.full_name, "date_of_birth": child.date_of_birth,
                           "personal_id_number": child.personal_id_number}
    if stage is Stage.BIRTH_RECORDED:
        on = await registered_on(session, child.id)  # promise only what the agencies will do at this age
        ctx["expects_card"] = rules.child_card_eligible(child.date_of_birth, on)
        ctx["expects_school"] = not rules.school_entry_passed(child.date_of_birth, on)
        ctx["expects_vaccination"] = bool(rules.vaccination_plan(child.date_of_birth, as_of=on))
    if stage is Stage.RESIDENCE_REGISTERED and child.household_id:
        household = await session.get(Household, child.household_id)
        address = await session.get(Address, household.address_id) if household else None
        ctx["household_number"] = household.household_number if household else None
        ctx["address"] = (f"{address.street}, {address.ward_name}, {address.district}, "
                          f"{rules.province_name(address.province_code)}") if address else None
    if stage is Stage.HEALTH_INSURANCE_ISSUED:
        card = (transaction_memo(session, WRITTEN_CARD).get(child.id)
                or (await session.execute(_CARD_OF, {"person": child.id})).first())
        ctx["card_number"] = card.card_number if card else None
        ctx["valid_from"] = card.valid_from if card else None
        ctx["valid_until"] = card.valid_until if card else None
    if stage is Stage.VACCINATION_PLANNED:
        doses = (transaction_memo(session, WRITTEN_PLAN).get(child.id)
                 or (await session.execute(_PLAN_OF, {"person": child.id})).all())
        names = rules.vaccine_names()
        ctx["doses"] = [{"name": names.get(d.vaccine, {}).get(child.preferred_language, d.vaccine),
                         "dose": d.dose, "due_date": d.due_date, "overdue": d.overdue_at_planning,
                         "flag": d.flag} for d in doses]
        ctx["overdue"] = [d for d in ctx["doses"] if d["overdue"]]
        ctx["upcoming"] = [d for d in ctx["doses"] if not d["overdue"]]
    if stage is Stage.SCHOOL_FORECAST_ADDED:
        written = transaction_memo(session, WRITTEN_FORECAST)
        if child.id in written:
            ctx["entry_year"] = written[child.id]
        else:
            forecast = await session.get(SchoolEntryForecast, child.id)
            ctx["entry_year"] = forecast.entry_year if forecast else None
    return ctx
