"""What the state tells a citizen over the years, and when (``data/lifecycle.yaml`` and the other rule files).

:func:`citizen_agenda` turns what the registry holds about a citizen (date of birth, vaccination plan, card,
school forecast) into dated items. Doses due on the same day are told together: one reminder before, one on
the day, one escalation if still not given. An item's key names what it is about (the kind and the date), so an
item is acted on once even when a dose of its day is given meanwhile, and a re-planned dose, due on another
day, gets that day's reminders.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from rules._data import RuleDataError, as_int, as_mapping, as_str, get, load_packaged
from rules.dates import add_months
from rules.identity_card import id_card_milestones
from rules.school import enrolment_notice_date, school_entry_date

_FILE = "lifecycle.yaml"


@dataclass(frozen=True)
class LifecyclePolicy:
    time_zone: str
    notice_hour: int
    dose_reminder_days_before: int
    overdue_escalation_days: int
    insurance_ending_notice_days: int
    stages: tuple[tuple[str, int | None], ...]


@cache
def lifecycle_policy() -> LifecyclePolicy:
    data: dict[str, Any] = load_packaged(_FILE)

    def days(key: str) -> int:
        return as_int(get(data, key, _FILE), f"{_FILE}: {key}", minimum=0)

    stages: list[tuple[str, int | None]] = []
    raw = get(data, "stages", _FILE)
    if not isinstance(raw, list) or not raw:
        raise RuleDataError(f"{_FILE}: stages must be a non-empty list")
    for item in raw:
        m = as_mapping(item, f"{_FILE}: stages[]")
        until = m.get("until")
        stages.append((as_str(get(m, "name", f"{_FILE}: stages[]"), f"{_FILE}: stages[].name"),
                       None if until is None else as_int(until, f"{_FILE}: stages[].until", minimum=1)))
    if stages[-1][1] is not None or any(u is None for _, u in stages[:-1]):
        raise RuleDataError(f"{_FILE}: only the last stage has no `until`")
    return LifecyclePolicy(
        time_zone=as_str(get(data, "time_zone", _FILE), f"{_FILE}: time_zone"),
        notice_hour=as_int(get(data, "notice_hour", _FILE), f"{_FILE}: notice_hour", minimum=0, maximum=23),
        dose_reminder_days_before=days("dose_reminder_days_before"),
        overdue_escalation_days=days("overdue_escalation_days"),
        insurance_ending_notice_days=days("insurance_ending_notice_days"),
        stages=tuple(stages),
    )


def life_stage(birth_date: date, on: date) -> tuple[str, date | None]:
    """The citizen's life stage on ``on`` and the day it ends (None for the last)."""
    for name, until in lifecycle_policy().stages:
        if until is None:
            return name, None
        ends = add_months(birth_date, 12 * until)
        if on < ends:
            return name, ends
    raise AssertionError("unreachable: the last stage is open-ended")


@dataclass(frozen=True)
class DoseFact:
    vaccine: str
    dose: int
    due_date: date
    administered_on: date | None = None
    overdue_at_planning: bool = False


@dataclass(frozen=True)
class CitizenFacts:
    date_of_birth: date
    doses: tuple[DoseFact, ...] = ()
    card_valid_until: date | None = None
    school_entry_year: int | None = None
    """Set when the child is in the school-entry forecast."""


@dataclass(frozen=True)
class PlannedItem:
    key: str
    kind: str
    on: date
    summary: str
    doses: tuple[tuple[str, int], ...] = ()
    about: date | None = None


KIND_ORDER = ("dose_overdue", "dose_due", "dose_reminder", "insurance_ending", "school_enrolment", "id_card_first",
              "id_card_renewal")


def citizen_agenda(facts: CitizenFacts, as_of: date) -> list[PlannedItem]:
    """Everything from ``as_of`` on, sorted by date. Earlier items are the citizen's past and are left out,
    except a notice that is still useful late (a card ending, an enrolment season, an ID card birthday), which
    is due on ``as_of`` instead."""
    policy = lifecycle_policy()
    items: list[PlannedItem] = []

    def add(item: PlannedItem, late_until: date | None = None) -> None:
        if item.on >= as_of:
            items.append(item)
        elif late_until is not None and as_of <= late_until:
            items.append(PlannedItem(item.key, item.kind, as_of, item.summary, item.doses, item.about))

    groups: dict[date, list[DoseFact]] = defaultdict(list)
    for d in facts.doses:
        if d.administered_on is None:
            groups[d.due_date].append(d)
    for due, doses in sorted(groups.items()):
        doses.sort(key=lambda d: (d.vaccine, d.dose))
        codes = tuple((d.vaccine, d.dose) for d in doses)
        listed = ", ".join(f"{v} {n}" for v, n in codes)
        add(PlannedItem(f"dose-reminder/{due}", "dose_reminder",
                        due - timedelta(days=policy.dose_reminder_days_before), f"dose reminder: {listed}", codes, due))
        catch_up_told = all(d.overdue_at_planning for d in doses) and due <= as_of
        if not catch_up_told:
            add(PlannedItem(f"dose-due/{due}", "dose_due", due, f"dose due today: {listed}", codes, due))
        add(PlannedItem(f"dose-overdue/{due}", "dose_overdue",
                        due + timedelta(days=policy.overdue_escalation_days), f"overdue escalation: {listed}", codes,
                        due))

    if facts.card_valid_until is not None:
        ends = facts.card_valid_until
        add(PlannedItem(f"insurance-ending/{ends}", "insurance_ending",
                        ends - timedelta(days=policy.insurance_ending_notice_days),
                        "under-6 health-insurance card ends: what comes next", about=ends), late_until=ends)

    if facts.school_entry_year is not None:
        add(PlannedItem(f"school-enrolment/{facts.school_entry_year}", "school_enrolment",
                        enrolment_notice_date(facts.date_of_birth),
                        f"grade-1 enrolment for September {facts.school_entry_year}",
                        about=school_entry_date(facts.date_of_birth)),
            late_until=school_entry_date(facts.date_of_birth) - timedelta(days=1))

    for m in id_card_milestones(facts.date_of_birth):
        if m.first:
            add(PlannedItem(f"id-card/{m.age}", "id_card_first", m.notice_on,
                            f"identity card mandatory at {m.age}: biometrics in person", about=m.birthday),
                late_until=m.birthday)
        else:
            add(PlannedItem(f"id-card/{m.age}", "id_card_renewal", m.notice_on,
                            f"identity card to renew at {m.age}", about=m.birthday), late_until=m.birthday)

    items.sort(key=lambda i: (i.on, KIND_ORDER.index(i.kind), i.key))
    return items


@cache
def jurisdiction_tz() -> tzinfo:
    """The jurisdiction's time zone (a fixed UTC+7 fallback where the host has no tz database)."""
    try:
        return ZoneInfo(lifecycle_policy().time_zone)
    except Exception:  # noqa: BLE001 - Vietnam has used UTC+7 without DST since 1975
        return timezone(timedelta(hours=7))


def local_date(moment: datetime) -> date:
    """The calendar date of an aware ``moment`` in the jurisdiction."""
    return moment.astimezone(jurisdiction_tz()).date()


def notice_time(on: date) -> datetime:
    """When a notice dated ``on`` goes out: the policy's hour, local time."""
    return datetime.combine(on, time(lifecycle_policy().notice_hour), tzinfo=jurisdiction_tz())
