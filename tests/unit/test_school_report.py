"""Plan cells, the schools CSV check and the province report (HTML with an inline SVG chart, and CSV)."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from registry.school_plan import PlanCell, entry_age, plan_query
from registry.schools import SchoolCsvError, parse_schools_csv, synthetic_schools
from reports.school_capacity import CHART_WARDS, write_province_report

GENERATED = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def cells_for(province: str, wards: int, years: range) -> list[PlanCell]:
    return [PlanCell(province, f"{province}{w:02d}", y, demand=20 * w + (y - years.start), places=100)
            for w in range(1, wards + 1) for y in years]


def test_gap_and_ratio() -> None:
    short = PlanCell("079", "07901", 2030, demand=120, places=80)
    assert short.gap == -40 and short.ratio == 1.5
    room = PlanCell("079", "07902", 2030, demand=0, places=80)
    assert room.gap == 80 and room.ratio == 0.0
    none = PlanCell("079", "07903", 2030, demand=7, places=0)
    assert none.gap == -7 and none.ratio is None


def test_the_entry_age_comes_from_the_rules_and_the_cohorts_follow_it() -> None:
    assert entry_age() == 6
    _, params = plan_query(first_entry_year=2030, years=6, province="079")
    assert params["born_from"].isoformat() == "2024-01-01" and params["born_before"].isoformat() == "2030-01-01"
    with pytest.raises(ValueError, match="unknown province"):
        plan_query(first_entry_year=2030, province="999")


def test_synthetic_schools_are_deterministic_and_of_realistic_size() -> None:
    wards = [f"001{n:02d}" for n in range(1, 13)] + [f"079{n:02d}" for n in range(1, 13)]
    assert [synthetic_schools(w[:3], w) for w in wards] == [synthetic_schools(w[:3], w) for w in wards]
    counts = [len(synthetic_schools(w[:3], w)) for w in wards]
    assert set(counts) <= {0, 1, 2, 3} and 0 in counts and max(counts) > 1
    assert all(40 <= s.grade1_places <= 160 and s.code == f"TH{w}{i + 1}"
               for w in wards for i, s in enumerate(synthetic_schools(w[:3], w)))


def test_a_schools_csv_is_checked_row_by_row() -> None:
    rows = parse_schools_csv("\ufeffcode,name,province_code,ward_code,grade1_places\n"
                             "A1,\"Trường Tiểu học A, cơ sở 1\",079,26734,120\n\nA2,Trường B,001,00001,0\n")
    assert [(r.code, r.grade1_places) for r in rows] == [("A1", 120), ("A2", 0)]
    with pytest.raises(SchoolCsvError) as refused:
        parse_schools_csv("code,name,province_code,ward_code,grade1_places\nA1,x,079,26734,1.5\nA2,y,079\n")
    assert refused.value.problems == [(2, "grade1_places: '1.5' is not a non-negative whole number"),
                                      (3, "3 fields, expected 5")]
    with pytest.raises(SchoolCsvError, match="line 1: header must be"):
        parse_schools_csv("code;name\n")


def test_the_report_has_an_svg_chart_the_short_wards_and_every_cell_in_csv(tmp_path: Path) -> None:
    cells = cells_for("079", 20, range(2030, 2036)) + cells_for("001", 2, range(2030, 2036))
    html_path, csv_path = write_province_report(tmp_path / "run", "079", cells, generated_at=GENERATED,
                                                run_id="plan-1")
    assert (html_path.name, csv_path.name) == ("079.html", "079.csv")
    page = html_path.read_text(encoding="utf-8")
    figure = re.search(r'<figure id="demand-vs-places">(.*?)</figure>', page, re.S)
    assert figure and "<svg" in figure.group(1)
    assert len(re.findall(r"<(?:path|rect)\b", figure.group(1))) >= CHART_WARDS * 6
    assert "TP. Hồ Chí Minh" in page and "plan-1" in page
    assert f"the {CHART_WARDS} wards with the largest shortfall of 20" in page
    short = [c for c in cells if c.province_code == "079" and c.gap < 0]
    assert short and page.count('<td class="ward">') == len(short)
    assert "16 of 20 wards short" in page  # wards 05-20 have demand above 100 places in some year
    with csv_path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 * 6 and list(rows[0]) == ["province", "ward", "entry_year", "demand", "places", "gap",
                                                      "ratio"]
    assert rows[0] == {"province": "079", "ward": "07901", "entry_year": "2030", "demand": "20", "places": "100",
                       "gap": "80", "ratio": "0.200"}


def test_a_province_without_cells_still_gets_a_report(tmp_path: Path) -> None:
    html_path, csv_path = write_province_report(tmp_path, "001", [], generated_at=GENERATED, run_id="plan-2")
    assert "<svg" in html_path.read_text(encoding="utf-8") and "no children" in html_path.read_text(encoding="utf-8")
    assert csv_path.read_text(encoding="utf-8").splitlines() == ["province,ward,entry_year,demand,places,gap,ratio"]
