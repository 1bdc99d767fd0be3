"""Parent matching: the person found by an ID number must carry the named parent's name, sex and birth year."""

from __future__ import annotations

from datetime import date

import pytest

import rules
from registry.matching import (
    ABSENT,
    MATCHED,
    NOT_FOUND,
    RecordedPerson,
    attention_reason,
    is_mismatch,
    match_outcome,
    mismatch,
    normalise_name,
    same_name,
)

CHILD_BORN = date(2026, 3, 1)
MOTHER_BORN = date(1994, 7, 12)
MOTHER_ID = rules.compose_personal_id(rules.personal_id_prefix("079", "female", MOTHER_BORN), 123456)
FATHER_ID = rules.compose_personal_id(rules.personal_id_prefix("079", "male", MOTHER_BORN), 654321)
MOTHER = RecordedPerson(full_name="Đặng Thị Hương", sex="female", date_of_birth=MOTHER_BORN)


def test_names_compare_without_diacritics_case_or_spacing() -> None:
    assert normalise_name("Đặng Thị Hương") == "dang thi huong"
    assert normalise_name("  ĐỖ   văn\tĐức ") == "do van duc"
    assert same_name("Nguyễn Văn An", "NGUYEN VAN AN")
    assert same_name("Nguyễn Văn An", "nguyen  van   an")
    assert same_name("Nguyễn Văn An", "Nguye\u0302\u0303n Va\u0306n An")  # decomposed input
    assert not same_name("Nguyễn Văn An", "Nguyễn Văn Anh")


def test_vietnamese_d_with_stroke_is_d() -> None:
    assert normalise_name("đ") == normalise_name("Đ") == "d"
    assert same_name("Đặng Thị Hương", "Dang Thi Huong")


def test_a_matching_mother() -> None:
    assert mismatch("mother", id_number=MOTHER_ID, named="DANG THI HUONG", person=MOTHER, child_born=CHILD_BORN) \
        is None
    assert match_outcome("mother", id_number=MOTHER_ID, named="Đặng Thị Hương", person=MOTHER,
                         child_born=CHILD_BORN) == MATCHED


def test_another_name_is_a_mismatch() -> None:
    outcome = match_outcome("mother", id_number=MOTHER_ID, named="Trần Thị Lan", person=MOTHER,
                            child_born=CHILD_BORN)
    assert outcome == "mismatch-name" and is_mismatch(outcome)


def test_wrong_sex_is_a_mismatch() -> None:
    as_father = match_outcome("father", id_number=MOTHER_ID, named="Đặng Thị Hương", person=MOTHER,
                              child_born=CHILD_BORN)
    assert as_father == "mismatch-sex"
    male_on_record = RecordedPerson(full_name="Đặng Thị Hương", sex="male", date_of_birth=MOTHER_BORN)
    assert mismatch("mother", id_number=MOTHER_ID, named="Đặng Thị Hương", person=male_on_record,
                    child_born=CHILD_BORN) == "sex"
    # the ID number's sex digit says male while the record says female
    assert mismatch("mother", id_number=FATHER_ID, named="Đặng Thị Hương", person=MOTHER,
                    child_born=CHILD_BORN) == "sex"


def test_birth_year_in_the_number_must_be_the_recorded_one() -> None:
    other_year = RecordedPerson(full_name=MOTHER.full_name, sex="female", date_of_birth=date(1993, 7, 12))
    assert mismatch("mother", id_number=MOTHER_ID, named=MOTHER.full_name, person=other_year,
                    child_born=CHILD_BORN) == "birth-year"


@pytest.mark.parametrize(("child_born", "expected"), [(date(2004, 7, 11), "age"), (date(2004, 7, 12), None),
                                                     (date(1990, 1, 1), "age")])
def test_a_parent_is_at_least_ten_years_older(child_born: date, expected: str | None) -> None:
    assert mismatch("mother", id_number=MOTHER_ID, named=MOTHER.full_name, person=MOTHER,
                    child_born=child_born) == expected


def test_absent_and_not_found_are_not_mismatches() -> None:
    assert match_outcome("father", id_number=None, named=None, person=None, child_born=CHILD_BORN) == ABSENT
    assert match_outcome("mother", id_number=MOTHER_ID, named="x", person=None, child_born=CHILD_BORN) == NOT_FOUND
    assert not is_mismatch(ABSENT) and not is_mismatch(NOT_FOUND) and not is_mismatch(None)


def test_the_attention_reason_names_the_role_only() -> None:
    assert attention_reason({"mother": "mismatch-name", "father": MATCHED}) == "mother-record-mismatch"
    assert attention_reason({"mother": MATCHED, "father": "mismatch-age"}) == "father-record-mismatch"
    assert attention_reason({"mother": MATCHED, "father": ABSENT}) is None
    assert attention_reason(None) is None
