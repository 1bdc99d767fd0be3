"""Unit tests for the jurisdiction rules in ``rules/`` (Vietnam data files)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

import rules
from rules import (
    PlannedDose,
    add_months,
    compose_personal_id,
    decode_personal_id,
    health_insurance_validity,
    is_known_province,
    personal_id_prefix,
    personal_id_problem,
    province_name,
    provinces,
    school_entry_date,
    school_entry_year,
    vaccination_plan,
    vaccination_plan_for,
)

DATA = Path(rules.__file__).parent / "data"


def _load(name: str) -> dict[str, Any]:
    with (DATA / name).open(encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def _dose(plan: list[PlannedDose], vaccine: str, dose: int) -> PlannedDose:
    matches = [p for p in plan if p.vaccine == vaccine and p.dose == dose]
    assert len(matches) == 1, f"{vaccine} dose {dose}: {matches}"
    return matches[0]


# --- provinces -------------------------------------------------------------------------------------------


def test_province_table_has_all_63_pre_2025_provinces() -> None:
    table = provinces()
    assert len(table) == 63
    assert table["001"] == "Hà Nội"
    assert table["079"] == "TP. Hồ Chí Minh"
    assert table["096"] == "Cà Mau"
    assert table["010"] == "Lào Cai"  # leading zeros survive YAML parsing
    assert all(len(code) == 3 and code.isdigit() for code in table)


def test_provinces_returns_a_copy() -> None:
    provinces()["001"] = "changed"
    assert province_name("001") == "Hà Nội"


def test_known_and_unknown_province() -> None:
    assert is_known_province("048")
    assert not is_known_province("003")  # gap in the table
    assert not is_known_province("999")
    assert not is_known_province("79")
    assert province_name("048") == "Đà Nẵng"
    with pytest.raises(ValueError, match="unknown province code '999'"):
        province_name("999")


# --- personal identification number ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sex", "birth", "expected"),
    [
        ("male", date(1999, 12, 31), "001099"),
        ("female", date(1999, 1, 1), "001199"),
        ("male", date(2000, 1, 1), "001200"),
        ("female", date(2000, 5, 1), "001300"),
        ("male", date(2100, 6, 1), "001400"),
        ("female", date(2100, 6, 1), "001500"),
        ("male", date(2026, 3, 1), "001226"),
        ("female", date(2399, 12, 31), "001999"),
    ],
)
def test_personal_id_prefix(sex: rules.Sex, birth: date, expected: str) -> None:
    assert personal_id_prefix("001", sex, birth) == expected


def test_personal_id_prefix_other_province() -> None:
    assert personal_id_prefix("079", "male", date(2026, 3, 1)) == "079226"


def test_personal_id_prefix_rejects_unknown_province() -> None:
    with pytest.raises(ValueError, match="unknown province code '999'"):
        personal_id_prefix("999", "male", date(2000, 1, 1))


@pytest.mark.parametrize("year", [1899, 2400])
def test_personal_id_prefix_rejects_century_outside_table(year: int) -> None:
    with pytest.raises(ValueError, match=f"birth year {year}"):
        personal_id_prefix("001", "female", date(year, 1, 1))


def test_compose_pads_serial() -> None:
    assert compose_personal_id("001300", 42) == "001300000042"
    assert compose_personal_id("079226", 0) == "079226000000"
    assert compose_personal_id("079226", 999_999) == "079226999999"


@pytest.mark.parametrize("serial", [-1, 1_000_000])
def test_compose_rejects_serial_out_of_range(serial: int) -> None:
    with pytest.raises(ValueError, match="serial"):
        compose_personal_id("001300", serial)


@pytest.mark.parametrize("prefix", ["00130", "0013000", "999300", "00130x"])
def test_compose_rejects_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValueError):
        compose_personal_id(prefix, 1)


@pytest.mark.parametrize(
    ("province", "sex", "birth"),
    [
        ("001", "female", date(2000, 5, 1)),
        ("001", "male", date(1999, 7, 7)),
        ("079", "female", date(2100, 1, 1)),
        ("096", "male", date(2026, 2, 28)),
    ],
)
def test_compose_decode_round_trip(province: str, sex: rules.Sex, birth: date) -> None:
    value = compose_personal_id(personal_id_prefix(province, sex, birth), 123_456)
    assert len(value) == 12
    assert personal_id_problem(value) is None
    assert decode_personal_id(value) == (province, sex, birth.year)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must be 12 digits"),
        ("00130012345", "must be 12 digits"),
        ("0013001234567", "must be 12 digits"),
        ("00130012345a", "must be 12 digits"),
        ("001300 12345", "must be 12 digits"),
        ("٠٠١٣٠٠١٢٣٤٥٦", "must be 12 digits"),  # Arabic-Indic digits are not ASCII digits
        ("999300123456", "unknown province code '999'"),
        ("003300123456", "unknown province code '003'"),
    ],
)
def test_malformed_ids_give_reasons(value: str, reason: str) -> None:
    assert personal_id_problem(value) == reason
    with pytest.raises(ValueError, match=reason):
        decode_personal_id(value)


def test_every_century_sex_digit_decodes() -> None:
    decoded = {d: decode_personal_id(f"001{d}05000001")[1:] for d in range(10)}
    assert decoded[0] == ("male", 1905)
    assert decoded[1] == ("female", 1905)
    assert decoded[2] == ("male", 2005)
    assert decoded[3] == ("female", 2005)
    assert decoded[9] == ("female", 2305)


# --- health insurance for children under 6 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "until"),
    [
        (date(2026, 3, 1), date(2032, 9, 30)),  # turns 6 before the school year: extended
        (date(2026, 9, 30), date(2032, 9, 30)),  # turns 6 on the cut-off day
        (date(2026, 10, 1), date(2032, 10, 1)),  # day after the cut-off: no extension
        (date(2026, 11, 15), date(2032, 11, 15)),
        (date(2024, 2, 29), date(2030, 9, 30)),  # 72 months = 28 Feb 2030, then extended
        (date(2026, 1, 1), date(2032, 9, 30)),
        (date(2026, 12, 31), date(2032, 12, 31)),
    ],
)
def test_health_insurance_validity(birth: date, until: date) -> None:
    assert health_insurance_validity(birth) == (birth, until)


def test_health_insurance_data_documents_leap_day_choice() -> None:
    data = _load("health_insurance.yaml")
    assert data["leap_day_birthday"] == "feb28"
    assert data["coverage_months"] == 72


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2024, 2, 29), 72) == date(2030, 2, 28)
    assert add_months(date(2024, 2, 29), 48) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 3, 15), 0) == date(2026, 3, 15)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)


# --- immunization plan -----------------------------------------------------------------------------------

BORN = date(2026, 1, 31)


def test_vaccination_birth_doses() -> None:
    plan = vaccination_plan(BORN)
    hepb = _dose(plan, "HEPB_BIRTH", 1)
    assert hepb.due_date == BORN
    assert hepb.due_by == BORN + timedelta(days=1)
    bcg = _dose(plan, "BCG", 1)
    assert bcg.due_date == BORN
    assert bcg.due_by == date(2026, 2, 28)  # 1 month, clamped
    assert hepb.names["vi"] and hepb.names["en"]


def test_vaccination_month_offsets_clamp() -> None:
    plan = vaccination_plan(BORN)
    assert _dose(plan, "DPT_VGB_HIB", 1).due_date == date(2026, 3, 31)
    assert _dose(plan, "DPT_VGB_HIB", 2).due_date == date(2026, 4, 30)
    assert _dose(plan, "DPT_VGB_HIB", 3).due_date == date(2026, 5, 31)
    assert _dose(plan, "DPT_VGB_HIB", 1).due_by is None
    assert _dose(plan, "OPV", 3).due_date == date(2026, 5, 31)
    assert _dose(plan, "IPV", 1).due_date == date(2026, 6, 30)
    assert _dose(plan, "MEASLES", 1).due_date == date(2026, 10, 31)
    assert _dose(plan, "DPT_BOOSTER", 1).due_date == date(2027, 7, 31)
    assert _dose(plan, "MR", 1).due_date == date(2027, 7, 31)


def test_vaccination_doses_at_least_a_month_apart() -> None:
    for born in (BORN, date(2025, 12, 31), date(2024, 2, 29), date(2026, 8, 31)):
        plan = vaccination_plan(born)
        for code in ("DPT_VGB_HIB", "OPV"):
            for n in (2, 3):
                previous, current = _dose(plan, code, n - 1), _dose(plan, code, n)
                assert current.due_date >= add_months(previous.due_date, 1), (born, code, n)


def test_japanese_encephalitis_chain() -> None:
    plan = vaccination_plan(BORN)
    je1, je2, je3 = (_dose(plan, "JE", n) for n in (1, 2, 3))
    assert je1.due_date == date(2027, 1, 31)
    assert je2.due_date == je1.due_date + timedelta(days=7)
    assert je2.due_by == je1.due_date + timedelta(days=14)
    assert je3.due_date == date(2028, 2, 7)  # 1 year after JE2
    assert je3.due_date == add_months(je2.due_date, 12)


def test_td_at_seven_years() -> None:
    assert _dose(vaccination_plan(BORN), "TD", 1).due_date == date(2033, 1, 31)
    assert _dose(vaccination_plan(date(2024, 2, 29)), "TD", 1).due_date == date(2031, 2, 28)


def test_plan_is_sorted() -> None:
    plan = vaccination_plan(BORN)
    keys = [(p.due_date, p.vaccine, p.dose) for p in plan]
    assert keys == sorted(keys)
    assert plan[0].due_date == BORN


def test_plan_contains_every_enabled_item_of_the_data_file() -> None:
    data = _load("vaccination_schedule.yaml")
    expected = {
        (code, item["dose"])
        for code, vaccine in data["vaccines"].items()
        for item in vaccine["doses"]
        if item.get("enabled", True)
    }
    plan = vaccination_plan(BORN)
    assert len(plan) == len(expected)
    assert {(p.vaccine, p.dose) for p in plan} == expected
    # The configurable doses ship enabled.
    assert ("IPV", 2) in expected and ("ROTA", 1) in expected and ("ROTA", 2) in expected


def test_plan_for_default_path_matches_plan() -> None:
    assert vaccination_plan_for(BORN) == vaccination_plan(BORN)


def _write_schedule(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_disabling_an_item_removes_it(tmp_path: Path) -> None:
    data = _load("vaccination_schedule.yaml")
    for item in data["vaccines"]["IPV"]["doses"]:
        if item["dose"] == 2:
            item["enabled"] = False
    for item in data["vaccines"]["ROTA"]["doses"]:
        item["enabled"] = False
    path = _write_schedule(tmp_path / "no_ipv2_no_rota.yaml", data)

    full = vaccination_plan(BORN)
    reduced = vaccination_plan_for(BORN, path)
    assert len(reduced) == len(full) - 3
    assert {(p.vaccine, p.dose) for p in full} - {(p.vaccine, p.dose) for p in reduced} == {
        ("IPV", 2),
        ("ROTA", 1),
        ("ROTA", 2),
    }
    assert _dose(reduced, "IPV", 1).due_date == _dose(full, "IPV", 1).due_date


def test_min_interval_pushes_a_dose_later(tmp_path: Path) -> None:
    schedule = {
        "vaccines": {
            "X": {
                "names": {"en": "X", "vi": "X"},
                "doses": [
                    {"dose": 1, "due": {"months": 2}},
                    {"dose": 2, "due": {"months": 2, "weeks": 1}, "min_interval": {"months": 1}},
                    {"dose": 3, "due": {"after_dose": 2, "days": 3}, "due_by": {"days": 1}},
                ],
            }
        }
    }
    plan = vaccination_plan_for(BORN, _write_schedule(tmp_path / "x.yaml", schedule))
    assert [p.due_date for p in plan] == [date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 3)]
    assert plan[2].due_by == date(2026, 5, 3)  # window end never before the due date


@pytest.mark.parametrize(
    "doses",
    [
        [{"dose": 1, "due": {"fortnights": 1}}],  # unknown unit
        [{"dose": 1, "due": {"after_dose": 1, "days": 1}}],  # refers to itself
        [{"dose": 2, "due": {"days": 0}}, {"dose": 1, "due": {"days": 0}}],  # out of order
        [
            {"dose": 1, "due": {"days": 0}, "enabled": False},
            {"dose": 2, "due": {"after_dose": 1, "days": 7}},  # anchored on a disabled dose
        ],
    ],
)
def test_invalid_schedule_is_rejected(tmp_path: Path, doses: list[dict[str, Any]]) -> None:
    path = _write_schedule(tmp_path / "bad.yaml", {"vaccines": {"X": {"names": {"en": "X"}, "doses": doses}}})
    with pytest.raises(rules.RuleDataError):
        vaccination_plan_for(BORN, path)


# --- school ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "year"),
    [
        (date(2020, 1, 1), 2026),
        (date(2020, 12, 31), 2026),
        (date(2019, 12, 31), 2025),
        (date(2026, 3, 1), 2032),
    ],
)
def test_school_entry_year(birth: date, year: int) -> None:
    assert school_entry_year(birth) == year
    assert school_entry_date(birth) == date(year, 9, 1)


# --- data files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "provinces.yaml",
        "personal_id.yaml",
        "health_insurance.yaml",
        "vaccination_schedule.yaml",
        "school.yaml",
    ],
)
def test_every_data_file_names_its_legal_source(name: str) -> None:
    text = (DATA / name).read_text(encoding="utf-8")
    assert text.lstrip().startswith("#")
    assert _load(name)["source"]
