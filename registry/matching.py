"""Is the person found by a parent's ID number the parent the office named? Pure rules, no database.

An ID number alone is not enough to link a child to someone: a typo in one digit can point at a stranger.
The person on record must also carry the name the office wrote (compared without diacritics, case or spacing),
the sex the role implies, the birth year the ID number encodes, and be old enough to be the child's parent.
The outcome is a code (``matched``, ``not-found``, ``absent`` or ``mismatch-<check>``): it never holds a name,
a number or a date, so it may be stored next to the registration and reported to an operator.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

import rules

Role = Literal["mother", "father"]

MATCHED: Final = "matched"
NOT_FOUND: Final = "not-found"
"""An ID number was given but nobody on record has it."""
ABSENT: Final = "absent"
"""The event names no such parent (e.g. no father on the record)."""
MISMATCH_PREFIX: Final = "mismatch-"

MIN_PARENT_AGE_YEARS: Final = 10
"""A parent is at least this many years older than the child (a plausibility limit, not a law)."""

_EXPECTED_SEX: Final[dict[Role, str]] = {"mother": "female", "father": "male"}
_NOT_DECOMPOSED: Final = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ł": "l", "Ł": "l", "ø": "o",
                                        "Ø": "o"})
"""Letters with a stroke that NFKD leaves whole (Vietnamese đ above all)."""


def normalise_name(value: str) -> str:
    """A name as compared: NFKD without combining marks, đ → d, case-folded, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", value.translate(_NOT_DECOMPOSED))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def same_name(a: str, b: str) -> bool:
    return normalise_name(a) == normalise_name(b)


@dataclass(frozen=True)
class RecordedPerson:
    """What the registry holds about the person found by the ID number."""

    full_name: str
    sex: str
    date_of_birth: date


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def mismatch(role: Role, *, id_number: str, named: str, person: RecordedPerson, child_born: date) -> str | None:
    """The first check the recorded person fails (``name``, ``sex``, ``birth-year``, ``age``), or None."""
    if not same_name(named, person.full_name):
        return "name"
    expected_sex = _EXPECTED_SEX[role]
    try:
        _, id_sex, id_year = rules.decode_personal_id(id_number)
    except ValueError:
        return "id-number"
    if person.sex != expected_sex or id_sex != expected_sex:
        return "sex"
    if id_year != person.date_of_birth.year:
        return "birth-year"
    if person.date_of_birth > _years_before(child_born, MIN_PARENT_AGE_YEARS):
        return "age"
    return None


def match_outcome(role: Role, *, id_number: str | None, named: str | None, person: RecordedPerson | None,
                  child_born: date) -> str:
    """``absent`` / ``not-found`` / ``matched`` / ``mismatch-<check>`` for one parent of the event."""
    if not id_number:
        return ABSENT
    if person is None:
        return NOT_FOUND
    failed = mismatch(role, id_number=id_number, named=named or "", person=person, child_born=child_born)
    return MATCHED if failed is None else MISMATCH_PREFIX + failed


def is_mismatch(outcome: str | None) -> bool:
    return bool(outcome) and str(outcome).startswith(MISMATCH_PREFIX)


def attention_reason(outcomes: dict[str, str] | None) -> str | None:
    """``<role>-record-mismatch`` for the first parent whose record did not match, else None."""
    for role in ("mother", "father"):
        if is_mismatch((outcomes or {}).get(role)):
            return f"{role}-record-mismatch"
    return None
