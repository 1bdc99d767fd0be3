"""When a citizen must get or renew the identity card (``data/identity_card.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

from rules._data import RuleDataError, as_int, as_mapping, get, load_packaged
from rules.dates import add_months

_FILE = "identity_card.yaml"


@dataclass(frozen=True)
class IdCardMilestone:
    age: int
    first: bool  # the first, mandatory card (biometrics in person); otherwise a renewal
    birthday: date
    notice_on: date


@cache
def _settings() -> tuple[int, tuple[int, ...], int]:
    data = load_packaged(_FILE)
    first = as_int(get(data, "first_card_age", _FILE), f"{_FILE}: first_card_age", minimum=0)
    renewals = get(data, "renewal_ages", _FILE)
    if not isinstance(renewals, list):
        raise RuleDataError(f"{_FILE}: renewal_ages must be a list")
    ages = tuple(as_int(a, f"{_FILE}: renewal_ages[]", minimum=first + 1) for a in renewals)
    before = as_mapping(get(data, "notice_before", _FILE), f"{_FILE}: notice_before")
    months = as_int(get(before, "months", f"{_FILE}: notice_before"), f"{_FILE}: notice_before.months", minimum=0)
    return first, ages, months


def id_card_milestones(birth_date: date) -> list[IdCardMilestone]:
    """The first card and each renewal, with the day the citizen is told (a month before the birthday)."""
    first, renewals, months = _settings()
    out = []
    for age in (first, *renewals):
        birthday = add_months(birth_date, 12 * age)
        out.append(IdCardMilestone(age, age == first, birthday, add_months(birthday, -months)))
    return out
