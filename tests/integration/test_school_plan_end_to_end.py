"""The school-capacity plan on the real servers: the monthly Schedule, one plan run and one notice per short
province when it is triggered, retried steps that store and send nothing twice, and `starter.py plan-schools`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

import rules
from activities.school_planning import NatsDepartmentGateway, RegistrySchoolPlanning
from infra.schedules import SCHOOL_PLAN_SCHEDULE_ID, ensure_school_plan_schedule
from infra.search_attributes import LIFE_EVENT, STAGE
from infra.settings import Settings
from registry.models import DepartmentNotice, Person, SchoolPlanCell, SchoolPlanRun
from rules.school import next_entry_year
from tests.helpers import save_history_if_requested
from workflows.school_plan_client import trigger_schedule
from workflows.school_plan_contracts import DepartmentNoticeRequest, PlanStep

from .test_cli import cli

pytestmark = pytest.mark.integration


def is_file(path: str) -> bool:
    return Path(path).is_file()


async def make_a_ward_short(service: Any) -> str:
    """Children of the plan's first intake in the ward with the fewest grade-1 places, one more than its places,
    so that at least one province is short whatever the other tests left in the registry."""
    year = next_entry_year(rules.local_date(datetime.now(UTC)))
    async with service.registry.unit_of_work() as session:
        ward = (await session.execute(text("""
            SELECT h.id AS household_id, a.province_code,
                   coalesce((SELECT sum(s.grade1_places) FROM schools s WHERE s.province_code = a.province_code
                             AND s.ward_code = a.ward_code), 0) AS places
            FROM households h JOIN addresses a ON a.id = h.address_id
            ORDER BY places, h.household_number LIMIT 1"""))).one()
        session.add_all([Person(full_name=f"Trẻ Kế Hoạch {i}", sex="female", date_of_birth=date(year - 6, 6, 1),
                                household_id=ward.household_id, preferred_language="vi")
                         for i in range(int(ward.places) + 1)])
    return str(ward.province_code)


async def test_the_schedule_exists_after_start_up(settings: Settings, service: Any) -> None:
    description = await service.client.get_schedule_handle(SCHOOL_PLAN_SCHEDULE_ID).describe()
    (calendar,) = description.schedule.spec.calendars  # the server keeps the cron `0 2 1 * *` as a calendar
    assert [(r.start, r.end) for r in calendar.minute] == [(0, 0)]
    assert [(r.start, r.end) for r in calendar.hour] == [(2, 2)]
    assert [(r.start, r.end) for r in calendar.day_of_month] == [(1, 1)]
    assert description.schedule.spec.time_zone_name == "Asia/Ho_Chi_Minh"
    action = description.schedule.action
    assert action.workflow == "SchoolCapacityPlanWorkflow"  # type: ignore[attr-defined]
    assert action.id == "school-plan-scheduled" and action.task_queue == settings.task_queue  # type: ignore[attr-defined]
    assert await ensure_school_plan_schedule(service.client, settings) is False  # a restart creates nothing


async def test_triggering_the_schedule_makes_one_run_and_one_notice_per_short_province(
        settings: Settings, service: Any, admin_js: Any) -> None:
    short_province = await make_a_ward_short(service)
    handle = await trigger_schedule(service.client)
    outcome = await handle.result()
    save_history_if_requested("school_plan", await handle.fetch_history())
    assert handle.id.startswith("school-plan-scheduled")
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(LIFE_EVENT) == "school-plan" and attrs.get(STAGE) == "completed"

    key = f"{handle.id}/{handle.run_id}"
    async with service.registry.unit_of_work() as session:
        runs = (await session.scalars(select(SchoolPlanRun).where(SchoolPlanRun.workflow_id == key))).all()
        assert len(runs) == 1
        run = runs[0]
        short = set((await session.scalars(select(SchoolPlanCell.province_code).where(
            SchoolPlanCell.run_id == run.id, SchoolPlanCell.places < SchoolPlanCell.demand))).all())
        notices = (await session.scalars(select(DepartmentNotice).where(
            DepartmentNotice.plan_run_id == run.id))).all()
    assert run.id == outcome.plan_run_id and run.finished_at is not None
    assert run.report_dir == outcome.report_dir
    assert short_province in short
    assert sorted(n.province_code for n in notices) == sorted(short) == outcome.notified_provinces
    assert {n.dedupe_key for n in notices} == {f"{run.id}/{p}" for p in short}
    assert all(n.department == "education" and n.published_at is not None for n in notices)
    assert {p for p, n in outcome.short_wards.items() if n} == short

    notice = next(n for n in notices if n.province_code == short_province)
    html_report, csv_report = outcome.reports[short_province]
    assert html_report in notice.body and is_file(html_report) and is_file(csv_report)
    assert is_file(outcome.index) and Path(outcome.report_dir) == settings.data_dir / "reports" / \
        "school-plan" / str(run.id)
    published = await admin_js.get_last_msg(settings.notify_stream,
                                              f"notify.department.education.{short_province}")
    assert published.headers["Nats-Msg-Id"] == notice.dedupe_key
    assert json.loads(published.data)["plan_run_id"] == str(run.id)

    # the same workflow's steps retried: the run is stored once and no notice is created or sent again
    education = RegistrySchoolPlanning(service.registry, NatsDepartmentGateway(service.js), settings.data_dir)
    again = await education.compute_school_plan(PlanStep(workflow_id=key))
    assert again.plan_run_id == run.id
    for _ in range(2):
        sent = await education.notify_education_departments(DepartmentNoticeRequest(
            plan_run_id=run.id, workflow_id=key, reports=outcome.reports))
        assert (sent.newly_created, sent.published) == (0, 0) and sent.provinces == sorted(short)
    async with service.registry.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(SchoolPlanRun)
                                    .where(SchoolPlanRun.workflow_id == key)) == 1
        assert await session.scalar(select(func.count()).select_from(DepartmentNotice)
                                    .where(DepartmentNotice.plan_run_id == run.id)) == len(short)
    info = await admin_js.stream_info(settings.notify_stream)
    assert (await admin_js.get_last_msg(settings.notify_stream, f"notify.department.education.{short_province}")
            ).seq == published.seq, f"a retried step published again ({info.state.messages} messages)"


async def test_plan_schools_for_one_province_from_the_cli(settings: Settings, service: Any) -> None:
    code, out, err = await cli(settings, "plan-schools", "--province", "079", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["province_code"] == "079" and list(result["reports"]) == ["079"]
    assert all(is_file(p) for p in result["reports"]["079"])
    async with service.registry.unit_of_work() as session:
        run = await session.get(SchoolPlanRun, uuid.UUID(result["plan_run_id"]))
        assert run is not None and run.province_code == "079" and run.workflow_id.startswith("school-plan-079-")

    code, out, err = await cli(settings, "plan-schools", "--province", "999")
    assert code != 0 and "unknown province" in err and "999" in err
