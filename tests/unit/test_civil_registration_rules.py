"""Plausibility limits of civil registration and the earliest birth year the ID-number rules cover."""

from __future__ import annotations

from datetime import date

import rules


def test_earliest_birth_year_is_the_first_century_of_the_id_table() -> None:
    assert rules.earliest_birth_year_covered() == 1900


def test_max_years_from_birth_to_registration_is_read_from_the_data_file() -> None:
    assert rules.max_years_from_birth_to_registration() == 120


def test_earliest_plausible_birth_date() -> None:
    assert rules.earliest_plausible_birth_date(date(2024, 5, 2)) == date(1904, 5, 2)
    assert rules.earliest_plausible_birth_date(date(2024, 2, 29)) == date(1904, 2, 29)
    assert rules.earliest_plausible_birth_date(date(2020, 2, 29)) == date(1900, 2, 28)  # 1900 is a common year
    assert rules.earliest_plausible_birth_date(date(2124, 2, 29)) == date(2004, 2, 29)
    assert rules.earliest_plausible_birth_date(date(2123, 3, 1)) == date(2003, 3, 1)
    assert rules.earliest_plausible_birth_date(date(50, 1, 1)) == date.min
