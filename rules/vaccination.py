"""Immunization plan for a child from the schedule in ``data/vaccination_schedule.yaml`` (TCMR).

Each dose is timed either from birth or from an earlier dose of the same vaccine, and keeps a minimum
interval after the previous dose; the file header documents the format.

A plan made for a child registered late is a catch-up plan: a dose whose due age has passed is due on the
planning day (`as_of`), later doses keep their minimum intervals after it, and doses that are no longer given
at the child's age (the schedule's `not_after` limits) are left out. Doses the health station reported as given
fix the date the next doses are counted from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from rules._data import RuleDataError, as_bool, as_int, as_mapping, as_str, get, load_packaged, load_path
from rules.dates import add_months

_FILE = "vaccination_schedule.yaml"
_OFFSET_UNITS = ("years", "months", "weeks", "days")


@dataclass(frozen=True)
class PlannedDose:
    vaccine: str  # schedule code, e.g. "DPT_VGB_HIB"
    dose: int  # 1-based dose number within that vaccine
    due_date: date  # earliest recommended date
    due_by: date | None  # end of the recommended window, if the schedule gives one
    names: dict[str, str]  # display names by language, e.g. {"vi": ..., "en": ...}
    nominal_due_date: date | None = None  # the schedule's date for a child vaccinated on time
    overdue: bool = False  # its due age had passed on the planning day: due at once (catch-up)
    flag: str | None = None  # a note for the health station, e.g. "health-station-judgement"
    administered_on: date | None = None  # reported as given on this day


@dataclass(frozen=True)
class _Offset:
    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    def after(self, d: date) -> date:
        """Months and years first (clamped to the end of the month), then weeks and days."""
        return add_months(d, self.years * 12 + self.months) + timedelta(weeks=self.weeks, days=self.days)


@dataclass(frozen=True)
class _DoseRule:
    dose: int
    due: _Offset
    after_dose: int | None  # None: `due` counts from birth
    due_by: _Offset | None
    min_interval: _Offset | None
    not_after: _Offset | None = None  # from birth: not given (nor the later doses) when it would fall after
    judgement_after: _Offset | None = None  # from birth: planned, flagged for the health station's judgement


@dataclass(frozen=True)
class _VaccineRule:
    code: str
    names: dict[str, str]
    doses: tuple[_DoseRule, ...]  # enabled doses only, in dose order


@dataclass(frozen=True)
class _Schedule:
    vaccines: tuple[_VaccineRule, ...]
    age_limit: _Offset | None  # no childhood plan for a child registered at this age or older


def _offset(value: Any, origin: str, *, allow_after_dose: bool) -> tuple[_Offset, int | None]:
    m = as_mapping(value, origin)
    allowed = _OFFSET_UNITS + (("after_dose",) if allow_after_dose else ())
    unknown = set(m) - set(allowed)
    if unknown:
        raise RuleDataError(f"{origin}: unknown key(s) {sorted(map(str, unknown))}; allowed: {list(allowed)}")
    units = {u: as_int(m.get(u, 0), f"{origin}.{u}", minimum=0) for u in _OFFSET_UNITS}
    after = m.get("after_dose")
    after_dose = None if after is None else as_int(after, f"{origin}.after_dose", minimum=1)
    return _Offset(**units), after_dose


def _parse_vaccine(code: Any, raw: Any, origin: str) -> _VaccineRule:
    code = as_str(code, f"{origin}: vaccine code")
    where = f"{origin}: vaccines.{code}"
    body = as_mapping(raw, where)
    names_raw = as_mapping(get(body, "names", where), f"{where}.names")
    names = {as_str(k, f"{where}.names"): as_str(v, f"{where}.names.{k}") for k, v in names_raw.items()}
    doses_raw = get(body, "doses", where)
    if not isinstance(doses_raw, list) or not doses_raw:
        raise RuleDataError(f"{where}.doses: expected a non-empty list")

    enabled: dict[int, _DoseRule] = {}
    disabled: set[int] = set()
    last = 0
    for item in doses_raw:
        item = as_mapping(item, f"{where}.doses[]")
        number = as_int(get(item, "dose", f"{where}.doses[]"), f"{where}.doses[].dose", minimum=1)
        at = f"{where} dose {number}"
        if number <= last:
            raise RuleDataError(f"{at}: doses must be listed in increasing dose order without repeats")
        last = number
        unknown = set(item) - {"dose", "due", "due_by", "min_interval", "enabled", "not_after", "judgement_after"}
        if unknown:
            raise RuleDataError(f"{at}: unknown key(s) {sorted(map(str, unknown))}")
        if not as_bool(item.get("enabled", True), f"{at}.enabled"):
            disabled.add(number)
            continue
        due, after_dose = _offset(get(item, "due", at), f"{at}.due", allow_after_dose=True)
        if after_dose is not None:
            if after_dose in disabled:
                raise RuleDataError(f"{at}: is timed after dose {after_dose}, which is disabled")
            if after_dose not in enabled:
                raise RuleDataError(f"{at}: after_dose {after_dose} must name an earlier dose")
        due_by = None
        if item.get("due_by") is not None:
            due_by, _ = _offset(item["due_by"], f"{at}.due_by", allow_after_dose=False)
        interval, not_after, judgement_after = (
            None if item.get(key) is None else _offset(item[key], f"{at}.{key}", allow_after_dose=False)[0]
            for key in ("min_interval", "not_after", "judgement_after"))
        enabled[number] = _DoseRule(number, due, after_dose, due_by, interval, not_after, judgement_after)
    return _VaccineRule(code, names, tuple(enabled.values()))


def _parse_schedule(data: dict[str, Any], origin: str) -> _Schedule:
    vaccines = as_mapping(get(data, "vaccines", origin), f"{origin}: vaccines")
    limit = data.get("programme_age_limit")
    age_limit = None if limit is None else _offset(limit, f"{origin}: programme_age_limit", allow_after_dose=False)[0]
    return _Schedule(tuple(_parse_vaccine(code, raw, origin) for code, raw in vaccines.items()), age_limit)


@cache
def _schedule(path: Path | None) -> _Schedule:
    if path is None:
        return _parse_schedule(load_packaged(_FILE), _FILE)
    return _parse_schedule(load_path(path), str(path))


def _plan(birth_date: date, schedule: _Schedule, as_of: date | None,
          administered: Mapping[tuple[str, int], date]) -> list[PlannedDose]:
    today = as_of or birth_date
    if schedule.age_limit is not None and today >= schedule.age_limit.after(birth_date) and not administered:
        return []
    plan: list[PlannedDose] = []
    for vaccine in schedule.vaccines:
        actual: dict[int, date] = {}  # dose -> the date it was given or is planned
        previous: date | None = None
        for rule in vaccine.doses:
            given = administered.get((vaccine.code, rule.dose))
            nominal_anchor = birth_date if rule.after_dose is None else actual[rule.after_dose]
            nominal = rule.due.after(nominal_anchor)
            if given is None:
                due = max(nominal, today)
                if rule.min_interval is not None and previous is not None:
                    due = max(due, rule.min_interval.after(previous))
                if rule.not_after is not None and due > rule.not_after.after(birth_date):
                    break  # too old for this dose: neither it nor the later doses of the series are given
            else:
                due = given
            due_by = None if rule.due_by is None else max(due, rule.due_by.after(nominal_anchor))
            flag = ("health-station-judgement" if given is None and rule.judgement_after is not None
                    and due > rule.judgement_after.after(birth_date) else None)
            actual[rule.dose] = previous = due
            plan.append(PlannedDose(vaccine.code, rule.dose, due, due_by, dict(vaccine.names),
                                    nominal_due_date=nominal, overdue=given is None and nominal < today, flag=flag,
                                    administered_on=given))
    plan.sort(key=lambda p: (p.due_date, p.vaccine, p.dose))
    return plan


def vaccination_plan(birth_date: date, as_of: date | None = None,
                     administered: Mapping[tuple[str, int], date] | None = None) -> list[PlannedDose]:
    """Every dose of the national schedule the child is to get, sorted by due date, then vaccine code, then dose.

    `as_of` is the planning day (default: the day of birth, i.e. a plan on time); doses due before it are due
    on it (catch-up). `administered` maps (vaccine, dose) to the day it was given.
    """
    if administered:
        return _plan(birth_date, _schedule(None), as_of, administered)
    return list(_plan_on_schedule(birth_date, as_of))


@lru_cache(maxsize=4096)
def _plan_on_schedule(birth_date: date, as_of: date | None) -> tuple[PlannedDose, ...]:
    """A plan without doses given depends on the two dates only: a birth's stages and its first notice ask for
    the same plan (the doses are frozen, the caller gets its own list)."""
    return tuple(_plan(birth_date, _schedule(None), as_of, {}))


def vaccination_plan_for(birth_date: date, schedule_path: Path | None = None, as_of: date | None = None,
                         administered: Mapping[tuple[str, int], date] | None = None) -> list[PlannedDose]:
    """Like :func:`vaccination_plan`, optionally from another schedule file (another jurisdiction, tests).

    Each file is read once per process; edit a copy under a new name rather than in place.
    """
    path = None if schedule_path is None else Path(schedule_path).resolve()
    return _plan(birth_date, _schedule(path), as_of, administered or {})


def vaccine_names() -> dict[str, dict[str, str]]:
    """Display names by vaccine code, e.g. ``{"BCG": {"vi": ..., "en": ...}}``."""
    return {v.code: dict(v.names) for v in _schedule(None).vaccines}


def replan_after_dose(birth_date: date, planned_on: date, given: Mapping[tuple[str, int], date],
                      vaccine: str, dose: int) -> dict[int, tuple[date, date | None]]:
    """After ``dose`` of ``vaccine`` was given, the new ``(due_date, due_by)`` of that vaccine's later doses.

    ``given`` holds every dose given so far (this one included); ``planned_on`` is the day the plan was made,
    so doses of other vaccines keep their dates.
    """
    return {d.dose: (d.due_date, d.due_by)
            for d in vaccination_plan(birth_date, as_of=planned_on, administered=given)
            if d.vaccine == vaccine and d.dose > dose and d.administered_on is None}
