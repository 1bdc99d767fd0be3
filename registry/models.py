"""The once-only registry: what the state already holds, and each agency's own records.

Agencies keep their records in their own tables (identity, residence, insurance, health, education,
notification) and read citizens from the shared person / household tables; every read of personal data is
written to `data_access_log`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> DateTime:
    return DateTime(timezone=True)


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    province_code: Mapped[str] = mapped_column(String(3), index=True)
    district: Mapped[str] = mapped_column(String(100))
    ward_code: Mapped[str] = mapped_column(String(10), index=True)
    ward_name: Mapped[str] = mapped_column(String(100))
    street: Mapped[str] = mapped_column(String(200))


class Household(Base):
    __tablename__ = "households"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    household_number: Mapped[str] = mapped_column(String(32), unique=True)
    address_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("addresses.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class Person(Base):
    __tablename__ = "persons"
    __table_args__ = (Index("ix_persons_alive_date_of_birth", "date_of_birth", postgresql_include=["household_id"],
                            postgresql_where=text("status = 'alive'")),)  # the school plan's cohorts (0007)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    personal_id_number: Mapped[str | None] = mapped_column(String(12), unique=True)
    full_name: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(6))
    date_of_birth: Mapped[date] = mapped_column(Date)
    household_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("households.id"), index=True)
    mother_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"))
    father_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    preferred_language: Mapped[str] = mapped_column(String(2), default="vi")
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    status: Mapped[str] = mapped_column(String(10), default="alive", server_default="alive")  # alive | deceased
    date_of_death: Mapped[date | None] = mapped_column(Date)


class ResidencePeriod(Base):
    """Residence as a history: one row per period a person lived in a household (open while `valid_to` is null)."""

    __tablename__ = "residence_periods"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    started_by: Mapped[str] = mapped_column(String(20))  # birth | move | operator | backfill
    ended_by: Mapped[str | None] = mapped_column(String(20))  # move | death
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class DeathRegistration(Base):
    """What the civil-status office sent for a death; one per deceased person (a second record is a no-op)."""

    __tablename__ = "death_registrations"
    __table_args__ = (UniqueConstraint("province_code", "registration_number",
                                       name="uq_death_registrations_province_number"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    registration_number: Mapped[str] = mapped_column(String(20))
    province_code: Mapped[str] = mapped_column(String(3))
    event_source: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), unique=True)
    date_of_death: Mapped[date] = mapped_column(Date)
    declarant_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"))
    payload: Mapped[dict[str, object]] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class FuneralAllowance(Base):
    """The funeral allowance recorded for the declarant of a death (Decree 63/2024 group 2), once per death."""

    __tablename__ = "funeral_allowances"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    deceased_person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), unique=True)
    declarant_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"))
    workflow_id: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class ReceivedEvent(Base):
    """Every civil event the bridge accepted, keyed as CloudEvents makes it unique: source + id (a second delivery
    is recognised; two offices may use the same ids)."""

    __tablename__ = "received_events"
    event_source: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    registration_number: Mapped[str | None] = mapped_column(String(20), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class BirthRegistration(Base):
    """A registered birth, identified by its province and registration number (numbers repeat across provinces)."""

    __tablename__ = "birth_registrations"
    __table_args__ = (UniqueConstraint("province_code", "registration_number",
                                       name="uq_birth_registrations_province_number"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    registration_number: Mapped[str] = mapped_column(String(20), index=True)
    event_id: Mapped[str] = mapped_column(String(200))
    event_source: Mapped[str | None] = mapped_column(String(200))
    workflow_id: Mapped[str] = mapped_column(String(200), unique=True)
    """`birth-<province>-<number>`; registrations received before migration 0004 keep `birth-<number>`."""
    parent_match: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    """Per role, what `record_birth` found: matched | not-found | absent | mismatch-<check> (codes only)."""
    registered_at: Mapped[datetime] = mapped_column(_now())
    office_code: Mapped[str] = mapped_column(String(32))
    province_code: Mapped[str] = mapped_column(String(3), index=True)
    payload: Mapped[dict[str, object]] = mapped_column(JSONType)
    child_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"), unique=True)
    recorded_at: Mapped[datetime | None] = mapped_column(_now())
    received_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class IdentityNumber(Base):
    """Identity agency: one personal ID number per person; the unique number makes allocation collision-safe."""

    __tablename__ = "identity_numbers"
    __table_args__ = (Index("uq_identity_numbers_active_person", "person_id", unique=True,
                            postgresql_where=text("status = 'active'")),)
    number: Mapped[str] = mapped_column(String(12), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    """One active number per person (partial unique index); cancelled numbers stay, linked to their successor."""
    registration_number: Mapped[str] = mapped_column(String(20), index=True)
    """Not unique: the same number may be issued in two provinces (`person_id` is the key)."""
    assigned_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")  # active | cancelled
    replaced_by: Mapped[str | None] = mapped_column(ForeignKey("identity_numbers.number"))
    """The number re-issued in its place (Circular 59/2021: a corrected sex or birth year changes the prefix)."""
    cancelled_at: Mapped[datetime | None] = mapped_column(_now())
    cancelled_by: Mapped[str | None] = mapped_column(String(200))
    """The workflow that cancelled the number (`correction-<uuid>`)."""


class ResidenceRegistration(Base):
    __tablename__ = "residence_registrations"
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    basis: Mapped[str] = mapped_column(String(20))  # mother's household, father's, operator
    workflow_id: Mapped[str] = mapped_column(String(200))
    registered_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class HealthInsuranceCard(Base):
    __tablename__ = "health_insurance_cards"
    card_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), unique=True)
    scheme: Mapped[str] = mapped_column(String(10))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    closed_on: Mapped[date | None] = mapped_column(Date)
    closed_reason: Mapped[str | None] = mapped_column(String(40))


class PlannedVaccination(Base):
    __tablename__ = "planned_vaccinations"
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    vaccine: Mapped[str] = mapped_column(String(20), primary_key=True)
    dose: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_date: Mapped[date] = mapped_column(Date)
    due_by: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="planned")  # planned | administered
    planned_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    nominal_due_date: Mapped[date | None] = mapped_column(Date)
    """The date the schedule gives for a child vaccinated on time; `due_date` differs after catch-up or re-planning."""
    overdue_at_planning: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    """The due age had passed when the plan was made (late registration): the dose is due at once."""
    flag: Mapped[str | None] = mapped_column(String(40))
    """A note for the health station, e.g. `health-station-judgement` for BCG in an older child."""
    administered_on: Mapped[date | None] = mapped_column(Date)


class SchoolEntryForecast(Base):
    __tablename__ = "school_entry_forecast"
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    province_code: Mapped[str] = mapped_column(String(3))
    ward_code: Mapped[str] = mapped_column(String(10), index=True)
    entry_year: Mapped[int] = mapped_column(Integer, index=True)
    added_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class Notification(Base):
    """Outbox: one row per (workflow, stage) notice; `dedupe_key` makes a retried activity harmless."""

    __tablename__ = "notifications"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    dedupe_key: Mapped[str] = mapped_column(String(250), unique=True)
    citizen_person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    recipient_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"), index=True)
    stage: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(_now())


class InboxMessage(Base):
    """A notice delivered to one recipient (every parent on record, or the citizen): one row per recipient."""

    __tablename__ = "inbox_messages"
    __table_args__ = (UniqueConstraint("notification_id", "recipient_person_id",
                                       name="uq_inbox_messages_notification_recipient"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notifications.id"), index=True)
    recipient_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"), index=True)
    recipient_role: Mapped[str] = mapped_column(String(12), default="mother", server_default="mother")
    """mother | father | citizen"""
    channel: Mapped[str] = mapped_column(String(10), default="app", server_default="app")
    delivered_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(_now())
    pushed_at: Mapped[datetime | None] = mapped_column(_now())
    """When the citizen's app was told of this message (events/notice_dispatch.py); NULL: not yet."""


class NoticeDispatch(Base):
    """A notice pushed to its recipients' apps, once per notification id whatever JetStream's duplicate window:
    a repeated announcement of the same notice only counts in `repeats_seen`."""

    __tablename__ = "notice_dispatches"
    notification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notifications.id"), primary_key=True)
    stream_sequence: Mapped[int] = mapped_column(BigInteger)
    recipients: Mapped[int] = mapped_column(Integer)
    repeats_seen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dispatched_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class VaccinationReport(Base):
    """A dose the health station reported as given (`vn.gov.health.vaccination.administered`), kept once per
    event (source + id); `applied_at` is set when the health agency has updated the child's plan."""

    __tablename__ = "vaccination_reports"
    __table_args__ = (UniqueConstraint("event_source", "event_id", name="uq_vaccination_reports_event"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_source: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    vaccine: Mapped[str] = mapped_column(String(20))
    dose: Mapped[int] = mapped_column(Integer)
    administered_on: Mapped[date] = mapped_column(Date)
    health_station_code: Mapped[str] = mapped_column(String(32))
    province_code: Mapped[str] = mapped_column(String(3))
    received_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    applied_at: Mapped[datetime | None] = mapped_column(_now())


class HealthStationTask(Base):
    """Work for the health station of the child's residence (an overdue dose to follow up); the station reads
    this table, and each task is also announced on NATS. `dedupe_key` makes an escalation happen once."""

    __tablename__ = "health_station_tasks"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    dedupe_key: Mapped[str] = mapped_column(String(250), unique=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    province_code: Mapped[str | None] = mapped_column(String(3))
    ward_code: Mapped[str | None] = mapped_column(String(10), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # overdue-dose
    vaccine: Mapped[str] = mapped_column(String(20))
    dose: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(_now())
    done_at: Mapped[datetime | None] = mapped_column(_now())


class ResidenceChange(Base):
    """A move the civil-status office registered (`vn.gov.civil.residence.changed`), kept once per event
    (source + id) and once per move (person, household, day): the same move sent twice is one change."""

    __tablename__ = "residence_changes"
    __table_args__ = (UniqueConstraint("event_source", "event_id", name="uq_residence_changes_event"),
                      UniqueConstraint("person_id", "household_id", "moved_on", name="uq_residence_changes_move"))
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_source: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    moved_on: Mapped[date] = mapped_column(Date)
    office_code: Mapped[str] = mapped_column(String(32))
    province_code: Mapped[str] = mapped_column(String(3))
    received_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class BirthCorrection(Base):
    """A correction of a birth registration (`vn.gov.civil.birth.corrected`), kept once per event (source + id):
    what the office sent (`requested`) and, once the civil registry applied it, the values before and after."""

    __tablename__ = "birth_corrections"
    __table_args__ = (UniqueConstraint("event_source", "event_id", name="uq_birth_corrections_event"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_source: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(200))
    registration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("birth_registrations.id"), index=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    office_code: Mapped[str] = mapped_column(String(32))
    corrected_at: Mapped[datetime] = mapped_column(_now())
    requested: Mapped[dict[str, object]] = mapped_column(JSONType)
    before: Mapped[dict[str, object] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, object] | None] = mapped_column(JSONType)
    applied_at: Mapped[datetime | None] = mapped_column(_now())
    received_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class School(Base):
    """A primary school and its grade-1 places (seeded, or loaded from a CSV with `starter.py load-schools`)."""

    __tablename__ = "schools"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    province_code: Mapped[str] = mapped_column(String(3), index=True)
    ward_code: Mapped[str] = mapped_column(String(10), index=True)
    grade1_places: Mapped[int] = mapped_column(Integer)


class SchoolPlanRun(Base):
    """One run of the school-capacity plan (all provinces or one)."""

    __tablename__ = "school_plan_runs"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workflow_id: Mapped[str] = mapped_column(String(200), unique=True)
    province_code: Mapped[str | None] = mapped_column(String(3))
    first_entry_year: Mapped[int] = mapped_column(Integer)
    years: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(_now())
    report_dir: Mapped[str | None] = mapped_column(String(500))


class SchoolPlanCell(Base):
    """Projected grade-1 demand against places for one province, ward and entry year of a plan run."""

    __tablename__ = "school_plan_cells"
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("school_plan_runs.id"), primary_key=True)
    province_code: Mapped[str] = mapped_column(String(3), primary_key=True)
    ward_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    entry_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    demand: Mapped[int] = mapped_column(Integer)
    places: Mapped[int] = mapped_column(Integer)


class DepartmentNotice(Base):
    """A notice to an agency's department (e.g. a province's education department), once per dedupe key."""

    __tablename__ = "department_notices"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    dedupe_key: Mapped[str] = mapped_column(String(250), unique=True)
    department: Mapped[str] = mapped_column(String(40))
    province_code: Mapped[str] = mapped_column(String(3), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    plan_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("school_plan_runs.id"))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(_now())


class DataAccess(Base):
    """One row per read of a citizen's personal data: who read it, which fields, why, for which workflow.

    A tamper-evident ledger (migration 0008): a BEFORE INSERT trigger sets `seq`, `prev_hash` and
    `hash` = sha256(prev_hash + the entry in canonical form) under an advisory lock; `cli/ledger.py` verifies
    the chain. A step's entry is unique per (workflow, reader, purpose, citizen), so a retry adds none.
    """

    __tablename__ = "data_access_log"
    __table_args__ = (Index("ix_data_access_log_seq", "seq", unique=True),
                      Index("uq_data_access_log_step", "workflow_id", "agency", "purpose", "citizen_person_id",
                            unique=True, postgresql_where=text("workflow_id IS NOT NULL")))
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    citizen_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"), index=True)
    """Null for a read that is not about one citizen (the dead-letter queue)."""
    agency: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(200))
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    accessed_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now(), index=True)
    fields: Mapped[str | None] = mapped_column(String(500))
    """The personal data read, comma-separated (e.g. `full_name,date_of_birth,address`)."""
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


__all__ = [
    "Address", "Base", "BirthCorrection", "BirthRegistration", "DataAccess", "DeathRegistration", "FuneralAllowance",
    "ResidencePeriod", "HealthInsuranceCard", "Household", "IdentityNumber",
    "HealthStationTask", "InboxMessage", "Notification", "Person", "PlannedVaccination", "ReceivedEvent",
    "ResidenceChange", "ResidenceRegistration", "SchoolEntryForecast", "VaccinationReport",
]
