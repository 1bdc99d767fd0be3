"""Education agency: the school-capacity plan, its reports and the notices to provinces' education departments.

Each step is idempotent: the plan run is stored once per workflow run (`school_plan_runs.workflow_id` is
`<workflow id>/<run id>`, unique), reports are rewritten with the same content, and a department notice is kept
once per plan run and province (`department_notices.dedupe_key`) and published with that key as `Nats-Msg-Id`.
The plan counts children per ward and entry year: no personal data is read one citizen at a time, none leaves.
"""

from __future__ import annotations

import asyncio
import html
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio.exceptions import ApplicationError

import rules
from registry.db import Registry
from registry.models import DepartmentNotice, SchoolPlanCell, SchoolPlanRun
from registry.school_plan import PlanCell, compute_plan
from rules.school import next_entry_year
from workflows.school_plan_contracts import (
    DepartmentNoticeRequest,
    NoticesSent,
    PlanComputed,
    PlanRunRef,
    PlanStep,
    ReportsWritten,
)

AGENCY = "education"
PLAN_YEARS = 6
"""Entry years in a plan: this year's intake and the five after it (children already born)."""
DEPARTMENT_SUBJECT = "notify.department.education"
REPORTS_FOLDER = Path("reports") / "school-plan"


def report_dir(data_dir: Path, plan_run_id: uuid.UUID) -> Path:
    return data_dir / REPORTS_FOLDER / str(plan_run_id)


def short_cells(cells: list[PlanCell]) -> list[PlanCell]:
    return sorted((c for c in cells if c.gap < 0), key=lambda c: (c.province_code, c.ward_code, c.entry_year))


def by_province(cells: list[PlanCell]) -> dict[str, list[PlanCell]]:
    grouped: dict[str, list[PlanCell]] = defaultdict(list)
    for cell in cells:
        grouped[cell.province_code].append(cell)
    return dict(grouped)


class DepartmentGateway(Protocol):
    """Where department notices are announced (an agency's own inbox system subscribes there)."""

    async def publish(self, notice: DepartmentNotice) -> None: ...


class NatsDepartmentGateway:
    def __init__(self, jetstream: Any, subject_prefix: str = DEPARTMENT_SUBJECT) -> None:
        self.js = jetstream
        self.subject_prefix = subject_prefix

    async def publish(self, notice: DepartmentNotice) -> None:
        body = json.dumps({"notice_id": str(notice.id), "department": notice.department,
                           "province_code": notice.province_code, "plan_run_id": str(notice.plan_run_id),
                           "subject": notice.subject, "body": notice.body}, ensure_ascii=False).encode()
        await self.js.publish(f"{self.subject_prefix}.{notice.province_code}", body,
                              headers={"Nats-Msg-Id": notice.dedupe_key})


class RegistrySchoolPlanning:
    def __init__(self, registry: Registry, gateway: DepartmentGateway, data_dir: Path) -> None:
        self.registry = registry
        self.gateway = gateway
        self.data_dir = data_dir

    async def compute_school_plan(self, inp: PlanStep) -> PlanComputed:
        """Compute and store the plan once for this workflow run; a retry returns what is stored."""
        if inp.province_code is not None and not rules.is_known_province(inp.province_code):
            raise ApplicationError(f"unknown province code '{inp.province_code}'", type="UnknownProvince",
                                   non_retryable=True)
        async with self.registry.unit_of_work() as session:
            run = await session.scalar(select(SchoolPlanRun).where(SchoolPlanRun.workflow_id == inp.workflow_id))
            if run is None:
                year = inp.first_entry_year or next_entry_year(rules.local_date(datetime.now(UTC)))
                cells = await compute_plan(session, first_entry_year=year, years=PLAN_YEARS,
                                           province=inp.province_code)
                run_id = await session.scalar(
                    insert(SchoolPlanRun).values(id=uuid.uuid4(), workflow_id=inp.workflow_id,
                                                 province_code=inp.province_code, first_entry_year=year,
                                                 years=PLAN_YEARS)
                    .on_conflict_do_nothing(index_elements=["workflow_id"]).returning(SchoolPlanRun.id))
                if run_id is not None:  # None: a concurrent attempt stored it first (read below)
                    if cells:
                        await session.execute(insert(SchoolPlanCell), [
                            {"run_id": run_id, "province_code": c.province_code, "ward_code": c.ward_code,
                             "entry_year": c.entry_year, "demand": c.demand, "places": c.places} for c in cells])
                run = await session.scalar(select(SchoolPlanRun).where(SchoolPlanRun.workflow_id == inp.workflow_id))
                assert run is not None
            cells = await stored_cells(session, run.id)
        provinces = sorted({c.province_code for c in cells} | ({inp.province_code} if inp.province_code else set()))
        short: dict[str, set[str]] = {p: set() for p in provinces}
        for cell in short_cells(cells):
            short[cell.province_code].add(cell.ward_code)
        return PlanComputed(plan_run_id=run.id, first_entry_year=run.first_entry_year, years=run.years,
                            provinces=provinces, short_wards={p: len(w) for p, w in short.items()})

    async def write_school_reports(self, inp: PlanRunRef) -> ReportsWritten:
        """An HTML and a CSV report per province of the run, and an index; the folder is stored on the run."""
        async with self.registry.unit_of_work() as session:
            run = await require_run(session, inp.plan_run_id)
            cells = await stored_cells(session, run.id)
        out_dir = report_dir(self.data_dir, run.id)
        reports, index = await asyncio.to_thread(write_reports, out_dir, run, cells)  # files: off the event loop
        async with self.registry.unit_of_work() as session:
            await session.execute(update(SchoolPlanRun).where(SchoolPlanRun.id == run.id)
                                  .values(report_dir=str(out_dir)))
        return ReportsWritten(report_dir=str(out_dir), index=str(index), reports=reports)

    async def notify_education_departments(self, inp: DepartmentNoticeRequest) -> NoticesSent:
        """One notice per province with a ward short of places, once per plan run; then the run is finished."""
        async with self.registry.unit_of_work() as session:
            run = await require_run(session, inp.plan_run_id)
            shortfalls = by_province(short_cells(await stored_cells(session, run.id)))
            newly = 0
            for province, cells in sorted(shortfalls.items()):
                subject, body = department_notice(run, province, cells, inp.reports.get(province, []))
                result = await session.execute(
                    insert(DepartmentNotice)
                    .values(id=uuid.uuid4(), dedupe_key=f"{run.id}/{province}", department=AGENCY,
                            province_code=province, subject=subject, body=body, plan_run_id=run.id)
                    .on_conflict_do_nothing(index_elements=["dedupe_key"]))
                newly += bool(result.rowcount)  # type: ignore[attr-defined]
            notices = (await session.scalars(select(DepartmentNotice).where(
                DepartmentNotice.plan_run_id == run.id).order_by(DepartmentNotice.province_code))).all()
        published = 0
        for notice in notices:
            if notice.published_at is None:
                await self.gateway.publish(notice)
                published += 1
                async with self.registry.unit_of_work() as session:
                    await session.execute(update(DepartmentNotice).where(DepartmentNotice.id == notice.id)
                                          .values(published_at=datetime.now(UTC)))
        async with self.registry.unit_of_work() as session:
            await session.execute(update(SchoolPlanRun).where(SchoolPlanRun.id == run.id,
                                                              SchoolPlanRun.finished_at.is_(None))
                                  .values(finished_at=datetime.now(UTC)))
        return NoticesSent(provinces=[n.province_code for n in notices], newly_created=newly, published=published)


async def require_run(session: Any, plan_run_id: uuid.UUID) -> SchoolPlanRun:
    run = await session.get(SchoolPlanRun, plan_run_id)
    if run is None:
        raise ApplicationError("school plan run is not in the registry", type="PlanRunMissing", non_retryable=True)
    assert isinstance(run, SchoolPlanRun)
    return run


async def stored_cells(session: Any, plan_run_id: uuid.UUID) -> list[PlanCell]:
    rows = (await session.scalars(select(SchoolPlanCell).where(SchoolPlanCell.run_id == plan_run_id).order_by(
        SchoolPlanCell.province_code, SchoolPlanCell.ward_code, SchoolPlanCell.entry_year))).all()
    return [PlanCell(province_code=r.province_code, ward_code=r.ward_code, entry_year=r.entry_year,
                     demand=r.demand, places=r.places) for r in rows]


def department_notice(run: SchoolPlanRun, province: str, cells: list[PlanCell],
                      report: list[str]) -> tuple[str, str]:
    """Subject and body of an education department's notice: the short wards, per entry year, and the report."""
    wards = sorted({c.ward_code for c in cells})
    name = rules.province_name(province)
    subject = (f"School capacity plan {run.first_entry_year}-{run.first_entry_year + run.years - 1}: "
               f"{len(wards)} ward(s) short of grade-1 places in {name}")
    lines = [f"Plan run {run.id} ({run.workflow_id}), province {province} {name}.",
             "Wards where the children expected to enter grade 1 outnumber the places:", "",
             "ward        year  children  places  shortfall"]
    lines += [f"{c.ward_code:<10}  {c.entry_year}  {c.demand:>8}  {c.places:>6}  {-c.gap:>9}" for c in cells]
    lines += ["", f"Report: {report[0]}" if report else "Report: not written"]
    lines += [f"Data: {path}" for path in report[1:]]
    return subject[:200], "\n".join(lines) + "\n"


def write_reports(out_dir: Path, run: SchoolPlanRun, cells: list[PlanCell]) -> tuple[dict[str, list[str]], Path]:
    """Every province's report (also a requested province with no cells) and the index."""
    from reports.school_capacity import write_province_report  # matplotlib: loaded by the worker when it reports,
    # not by every process that imports the composition root (the CLI)

    out_dir.mkdir(parents=True, exist_ok=True)
    grouped = by_province(cells)
    provinces = sorted(set(grouped) | ({run.province_code} if run.province_code else set()))
    reports: dict[str, list[str]] = {}
    for province in provinces:
        html_path, csv_path = write_province_report(out_dir, province, grouped.get(province, []),
                                                    generated_at=run.started_at, run_id=str(run.id))
        reports[province] = [str(html_path), str(csv_path)]
    return reports, write_index(out_dir, run, reports, grouped)


def write_index(out_dir: Path, run: SchoolPlanRun, reports: dict[str, list[str]],
                grouped: dict[str, list[PlanCell]]) -> Path:
    """`index.html`: one line per province with its short wards and links to its reports."""
    rows = []
    for province, (html_path, csv_path, *_) in reports.items():
        short = len({c.ward_code for c in grouped.get(province, []) if c.gap < 0})
        rows.append(f"<tr><td>{html.escape(province)}</td><td>{html.escape(rules.province_name(province))}</td>"
                    f"<td>{short}</td><td><a href=\"{html.escape(Path(html_path).name)}\">report</a></td>"
                    f"<td><a href=\"{html.escape(Path(csv_path).name)}\">CSV</a></td></tr>")
    title = f"School capacity plan {run.first_entry_year}-{run.first_entry_year + run.years - 1}"
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
            f"<body><h1>{title}</h1>\n<p>Plan run {run.id}, generated {run.started_at.isoformat()}.</p>\n"
            "<table><tr><th>code</th><th>province</th><th>wards short</th><th></th><th></th></tr>\n"
            + "\n".join(rows) + "\n</table></body></html>\n")
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
