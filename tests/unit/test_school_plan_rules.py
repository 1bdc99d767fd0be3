"""The next grade-1 intake a plan starts from, and the one-off plan's workflow id."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rules.school import next_entry_year
from workflows.school_plan_client import one_off_workflow_id


def test_the_next_intake_is_this_years_until_the_school_year_begins() -> None:
    assert next_entry_year(date(2026, 1, 1)) == 2026
    assert next_entry_year(date(2026, 8, 31)) == 2026
    assert next_entry_year(date(2026, 9, 1)) == 2027
    assert next_entry_year(date(2026, 12, 31)) == 2027


def test_a_one_off_plan_is_named_by_province_and_time() -> None:
    assert one_off_workflow_id("079", datetime(2026, 11, 23, 19, 5, 7, 123, tzinfo=UTC)) == \
        "school-plan-079-20261123T190507000123Z"
