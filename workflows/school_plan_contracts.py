"""What crosses the boundary of SchoolCapacityPlanWorkflow: codes, counts, ids and file paths only.

A plan is an aggregate (children per ward and entry year against grade-1 places): no citizen appears in it.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class PlanRequest(_Model):
    """Workflow input. `None` means every province / the next entry year (this year's, if its school year has
    not begun on the day the plan is computed, else next year's)."""

    province_code: str | None = None
    first_entry_year: int | None = None


class PlanStep(_Model):
    """Input of `compute_school_plan`; `workflow_id` is `<workflow id>/<run id>`, the key of the stored run."""

    workflow_id: str
    province_code: str | None = None
    first_entry_year: int | None = None


class PlanComputed(_Model):
    plan_run_id: uuid.UUID
    first_entry_year: int
    years: int
    provinces: list[str]
    short_wards: dict[str, int]
    """Per province: how many wards have fewer grade-1 places than children in at least one entry year."""


class PlanRunRef(_Model):
    plan_run_id: uuid.UUID
    workflow_id: str


class ReportsWritten(_Model):
    report_dir: str
    index: str
    """`index.html` in `report_dir`, linking every province's report."""
    reports: dict[str, list[str]]
    """Per province: the HTML and the CSV report."""


class DepartmentNoticeRequest(_Model):
    plan_run_id: uuid.UUID
    workflow_id: str
    reports: dict[str, list[str]]
    """Where each province's report is, named in its notice."""


class NoticesSent(_Model):
    provinces: list[str]
    """The provinces whose education department was told (at least one ward short of places)."""
    newly_created: int
    published: int


class PlanOutcome(_Model):
    plan_run_id: uuid.UUID
    province_code: str | None
    first_entry_year: int
    years: int
    report_dir: str
    index: str
    reports: dict[str, list[str]]
    short_wards: dict[str, int]
    notified_provinces: list[str]
