"""Entry to grade 1 of primary school (``data/school.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

from rules._data import as_int, get, load_packaged, month_day
from rules.dates import clamped_date

_FILE = "school.yaml"


@dataclass(frozen=True)
class _Settings:
    entry_age: int
    start_month: int
    start_day: int
    notice_month: int
    notice_day: int


@cache
def _settings() -> _Settings:
    data = load_packaged(_FILE)
    age = as_int(get(data, "entry_age", _FILE), f"{_FILE}: entry_age", minimum=1)
    month, day = month_day(get(data, "school_year_start", _FILE), f"{_FILE}: school_year_start")
    notice_month, notice_day = month_day(get(data, "enrolment_notice", _FILE), f"{_FILE}: enrolment_notice")
    return _Settings(age, month, day, notice_month, notice_day)


def school_entry_year(birth_date: date) -> int:
    """Calendar year in which the child turns the entry age (6); age is counted by birth year only."""
    return birth_date.year + _settings().entry_age


def school_entry_date(birth_date: date) -> date:
    """Start of the school year (1 September) in :func:`school_entry_year`."""
    s = _settings()
    return clamped_date(school_entry_year(birth_date), s.start_month, s.start_day)


def school_entry_passed(birth_date: date, on: date) -> bool:
    """The school year the child would enter has already begun on ``on`` (late registration): no forecast."""
    return on >= school_entry_date(birth_date)


def enrolment_notice_date(birth_date: date) -> date:
    """When the family is told where to enrol for grade 1: spring of the entry year."""
    s = _settings()
    return clamped_date(school_entry_year(birth_date), s.notice_month, s.notice_day)


def next_entry_year(on: date) -> int:
    """The grade-1 intake still to come on ``on``: this year's if its school year has not begun, else next year's."""
    s = _settings()
    return on.year if on < clamped_date(on.year, s.start_month, s.start_day) else on.year + 1
