"""Immunization plan for a child from the schedule in ``data/vaccination_schedule.yaml`` (TCMR).

Each dose is timed either from birth or from an earlier dose of the same vaccine, and keeps a minimum
interval after the previous dose; the file header documents the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
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


@dataclass(frozen=True)
class _VaccineRule:
    code: str
    names: dict[str, str]
    doses: tuple[_DoseRule, ...]  # enabled doses only, in dose order


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
        unknown = set(item) - {"dose", "due", "due_by", "min_interval", "enabled"}
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
        interval = None
        if item.get("min_interval") is not None:
            interval, _ = _offset(item["min_interval"], f"{at}.min_interval", allow_after_dose=False)
        enabled[number] = _DoseRule(number, due, after_dose, due_by, interval)
    return _VaccineRule(code, names, tuple(enabled.values()))


def _parse_schedule(data: dict[str, Any], origin: str) -> tuple[_VaccineRule, ...]:
    vaccines = as_mapping(get(data, "vaccines", origin), f"{origin}: vaccines")
    return tuple(_parse_vaccine(code, raw, origin) for code, raw in vaccines.items())


@cache
def _schedule(path: Path | None) -> tuple[_VaccineRule, ...]:
    if path is None:
        return _parse_schedule(load_packaged(_FILE), _FILE)
    return _parse_schedule(load_path(path), str(path))


def _plan(birth_date: date, schedule: tuple[_VaccineRule, ...]) -> list[PlannedDose]:
    plan: list[PlannedDose] = []
    for vaccine in schedule:
        due_dates: dict[int, date] = {}
        previous: date | None = None
        for rule in vaccine.doses:
            anchor = birth_date if rule.after_dose is None else due_dates[rule.after_dose]
            due = rule.due.after(anchor)
            if rule.min_interval is not None and previous is not None:
                due = max(due, rule.min_interval.after(previous))
            due_by = None if rule.due_by is None else max(due, rule.due_by.after(anchor))
            due_dates[rule.dose] = previous = due
            plan.append(PlannedDose(vaccine.code, rule.dose, due, due_by, dict(vaccine.names)))
    plan.sort(key=lambda p: (p.due_date, p.vaccine, p.dose))
    return plan


def vaccination_plan(birth_date: date) -> list[PlannedDose]:
    """Every enabled dose of the national schedule, sorted by due date, then vaccine code, then dose."""
    return _plan(birth_date, _schedule(None))


def vaccination_plan_for(birth_date: date, schedule_path: Path | None = None) -> list[PlannedDose]:
    """Like :func:`vaccination_plan`, optionally from another schedule file (another jurisdiction, tests).

    Each file is read once per process; edit a copy under a new name rather than in place.
    """
    return _plan(birth_date, _schedule(None if schedule_path is None else Path(schedule_path).resolve()))
