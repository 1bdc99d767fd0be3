"""Validity of the state-paid health-insurance card for children under 6 (``data/health_insurance.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Literal

from rules._data import RuleDataError, as_int, get, load_packaged, month_day
from rules.dates import add_months, clamped_date

_FILE = "health_insurance.yaml"
LeapDayRule = Literal["feb28", "mar1"]


@dataclass(frozen=True)
class _Settings:
    coverage_months: int
    cutoff_month: int
    cutoff_day: int
    leap_day_birthday: LeapDayRule


@cache
def _settings() -> _Settings:
    data = load_packaged(_FILE)
    months = as_int(get(data, "coverage_months", _FILE), f"{_FILE}: coverage_months", minimum=1)
    month, day = month_day(get(data, "school_year_cutoff", _FILE), f"{_FILE}: school_year_cutoff")
    leap = get(data, "leap_day_birthday", _FILE)
    if leap == "feb28":
        rule: LeapDayRule = "feb28"
    elif leap == "mar1":
        rule = "mar1"
    else:
        raise RuleDataError(f"{_FILE}: leap_day_birthday must be feb28 or mar1, got {leap!r}")
    return _Settings(months, month, day, rule)


def coverage_end_age_date(birth_date: date) -> date:
    """The day the child reaches the coverage age (72 months), applying the leap-day setting."""
    s = _settings()
    anniversary = add_months(birth_date, s.coverage_months)
    if s.leap_day_birthday == "mar1" and anniversary.day < birth_date.day:
        # The birth day does not exist in the target month (29 Feb in a common year): roll to the next day.
        anniversary += timedelta(days=1)
    return anniversary


def health_insurance_validity(birth_date: date) -> tuple[date, date]:
    """``(valid_from, valid_until)``, both inclusive.

    Valid until the child reaches 72 months; if that day is on or before the school-year cut-off
    (30 September) of the same year, the card is extended to the cut-off so it covers the summer before
    school.
    """
    s = _settings()
    reached = coverage_end_age_date(birth_date)
    cutoff = clamped_date(reached.year, s.cutoff_month, s.cutoff_day)
    return birth_date, max(reached, cutoff)


def child_card_eligible(birth_date: date, on: date) -> bool:
    """A child is covered by the under-6 card only before reaching the coverage age (72 months) on ``on``."""
    return on < coverage_end_age_date(birth_date)
