"""Plausibility limits of civil-registration events, from ``data/civil_registration.yaml``."""

from __future__ import annotations

from datetime import date
from functools import cache

from rules._data import as_int, get, load_packaged
from rules.dates import clamped_date

_FILE = "civil_registration.yaml"


@cache
def max_years_from_birth_to_registration() -> int:
    """How many years a date of birth may lie before its registration date (a project limit, not a law)."""
    key = "max_years_from_birth_to_registration"
    return as_int(get(load_packaged(_FILE), key, _FILE), f"{_FILE}: {key}", minimum=1, maximum=200)


def earliest_plausible_birth_date(registered_on: date) -> date:
    """The earliest date of birth accepted for a registration on ``registered_on`` (29 Feb → 28 Feb)."""
    year = registered_on.year - max_years_from_birth_to_registration()
    if year < date.min.year:
        return date.min
    return clamped_date(year, registered_on.month, registered_on.day)
