"""The 12-digit Vietnamese personal identification number (số định danh cá nhân).

Layout (Decree 137/2015/NĐ-CP Art. 13): province code (3) + century/sex digit (1) + last two digits of the
birth year (2) + random serial (6). There is no check digit, so validation is limited to the shape, a known
province and a century/sex digit present in ``data/personal_id.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Literal, get_args

from rules._data import RuleDataError, as_int, as_mapping, get, load_packaged
from rules.provinces import is_known_province

Sex = Literal["male", "female"]
SEXES: tuple[Sex, ...] = get_args(Sex)

PROVINCE_DIGITS = 3
PREFIX_DIGITS = PROVINCE_DIGITS + 1 + 2
SERIAL_DIGITS = 6
ID_DIGITS = PREFIX_DIGITS + SERIAL_DIGITS
SERIAL_MAX = 10**SERIAL_DIGITS - 1

_FILE = "personal_id.yaml"


@dataclass(frozen=True)
class _CenturyTable:
    by_century: dict[int, dict[Sex, int]]  # 1900 -> {"male": 0, "female": 1}
    by_digit: dict[int, tuple[int, Sex]]  # 1 -> (1900, "female")


@cache
def _century_table() -> _CenturyTable:
    origin = f"{_FILE}: century_sex_digit"
    raw = as_mapping(get(load_packaged(_FILE), "century_sex_digit", _FILE), origin)
    by_century: dict[int, dict[Sex, int]] = {}
    by_digit: dict[int, tuple[int, Sex]] = {}
    for century_key, digits in raw.items():
        century = as_int(century_key, f"{origin} key", minimum=0)
        if century % 100:
            raise RuleDataError(f"{origin}: {century} is not the first year of a century")
        row = as_mapping(digits, f"{origin}.{century}")
        by_century[century] = {}
        for sex in SEXES:
            where = f"{origin}.{century}"
            digit = as_int(get(row, sex, where), f"{where}.{sex}", minimum=0, maximum=9)
            if digit in by_digit:
                raise RuleDataError(f"{origin}: digit {digit} is used twice")
            by_century[century][sex] = digit
            by_digit[digit] = (century, sex)
    if not by_century:
        raise RuleDataError(f"{origin}: empty")
    return _CenturyTable(by_century, by_digit)


def _century_range() -> str:
    centuries = sorted(_century_table().by_century)
    return f"{centuries[0]}-{centuries[-1] + 99}"


def earliest_birth_year_covered() -> int:
    """First year of the earliest century the century/sex digit table covers (no number exists before it)."""
    return min(_century_table().by_century)


def personal_id_prefix(province_code: str, sex: Sex, birth_date: date) -> str:
    """First 6 digits: province code + century/sex digit + last two digits of the birth year."""
    if not is_known_province(province_code):
        raise ValueError(f"unknown province code '{province_code}'")
    if sex not in SEXES:
        raise ValueError(f"sex must be one of {', '.join(SEXES)}, got {sex!r}")
    century = birth_date.year - birth_date.year % 100
    row = _century_table().by_century.get(century)
    if row is None:
        raise ValueError(
            f"no century/sex digit for birth year {birth_date.year} (table covers {_century_range()})"
        )
    return f"{province_code}{row[sex]}{birth_date.year % 100:02d}"


def compose_personal_id(prefix: str, serial: int) -> str:
    """``prefix`` followed by ``serial`` zero-padded to 6 digits (the serial is drawn by the caller)."""
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 <= serial <= SERIAL_MAX:
        raise ValueError(f"serial must be an integer in 0..{SERIAL_MAX}, got {serial!r}")
    if len(prefix) != PREFIX_DIGITS or not (prefix.isascii() and prefix.isdigit()):
        raise ValueError(f"prefix must be {PREFIX_DIGITS} digits")
    value = f"{prefix}{serial:0{SERIAL_DIGITS}d}"
    problem = personal_id_problem(value)
    if problem is not None:
        raise ValueError(f"invalid prefix: {problem}")
    return value


def personal_id_problem(value: str) -> str | None:
    """``None`` if ``value`` is a well-formed number, else a short human-readable reason.

    The reason never repeats the whole number, so it is safe to log.
    """
    if (
        not isinstance(value, str)
        or len(value) != ID_DIGITS
        or not (value.isascii() and value.isdigit())  # isdigit alone accepts e.g. Arabic-Indic digits
    ):
        return f"must be {ID_DIGITS} digits"
    province = value[:PROVINCE_DIGITS]
    if not is_known_province(province):
        return f"unknown province code '{province}'"
    digit = int(value[PROVINCE_DIGITS])
    if digit not in _century_table().by_digit:
        known = sorted(_century_table().by_digit)
        return f"digit 4 (century/sex) must be one of {', '.join(map(str, known))}, got {digit}"
    return None


def decode_personal_id(value: str) -> tuple[str, Sex, int]:
    """``(province_code, sex, birth_year)`` encoded in the number; ``ValueError`` if it is malformed."""
    problem = personal_id_problem(value)
    if problem is not None:
        raise ValueError(f"invalid personal ID number: {problem}")
    century, sex = _century_table().by_digit[int(value[PROVINCE_DIGITS])]
    year = century + int(value[PROVINCE_DIGITS + 1 : PREFIX_DIGITS])
    return value[:PROVINCE_DIGITS], sex, year
