"""CitizenLifecycleWorkflow: one per living citizen, sleeping durably until the next thing the state owes them.

Each run loads the citizen's agenda (dose reminders, overdue escalations, the under-6 card ending, grade-1
enrolment, the identity card at 14 and its renewals) from the registry through an activity, sleeps until the
next item, acts on it (the activity re-checks the registry and notifies once per item key) and records what it
did. A dose reported by the health station arrives as the `dose_reported` signal: the health agency applies it
(re-planning the later doses) and the agenda is loaded again.

History stays bounded: a run ends with continue-as-new at the end of the citizen's life stage (infancy, toddler,
preschool, ...), after at most `MAX_RUN` of time, or when its history grows past `MAX_HISTORY_EVENTS`; what it
did travels to the next run in `LifecycleInput.past` for the `timeline` query. The workflow holds registry
UUIDs, dates and dose codes only: names, ID numbers and addresses stay in the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import date, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from infra.search_attributes import LIFE_EVENT, STAGE
    from workflows.change_contracts import AgendaChanged
    from workflows.contracts import (
        ActionOutcome,
        Agenda,
        AgendaAction,
        AgendaItem,
        AgendaRequest,
        DoseApplication,
        DoseReported,
        LifecycleInput,
        TimelineEntry,
    )

T = TypeVar("T", bound=BaseModel)

STEP_TIMEOUT = timedelta(seconds=60)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=10))
"""A lifecycle step retries until the agency answers: a reminder a few hours late beats a lost one."""

LOCAL_STEPS_PATCH = "lifecycle-local-steps"
"""Runs started since run their registry steps as local activities (short transactions in the worker: no task
queue round trip, one history event per step); runs recorded before replay them as activities."""
LOCAL_RETRY_THRESHOLD = STEP_RETRY.initial_interval
"""A local step's first quick retry waits in the worker; every longer backoff is a durable workflow timer."""

MAX_RUN = timedelta(days=365 * 8)
"""A run never spans more than this (the time-skipping test server caps a run at 10 virtual years)."""

MAX_HISTORY_EVENTS = 200
"""Continue as new once a run's history is this long, whatever the stage (the target is < 300 per run)."""


@workflow.defn(name="CitizenLifecycleWorkflow")
class CitizenLifecycleWorkflow:
    def __init__(self) -> None:
        self._agenda: Agenda | None = None
        self._past: list[TimelineEntry] = []
        self._reports: list[uuid.UUID] = []
        self._seen_reports: set[uuid.UUID] = set()
        self._local_steps = False
        """Decided once at the start of `run` (LOCAL_STEPS_PATCH)."""
        self._died = False
        self._agenda_stale = False

    @workflow.run
    async def run(self, inp: LifecycleInput) -> None:
        wf_id = workflow.info().workflow_id
        self._local_steps = workflow.patched(LOCAL_STEPS_PATCH)
        self._past = list(inp.past)
        for report in inp.pending_reports:
            self._on_report(report)
        run_ends = workflow.now() + MAX_RUN

        agenda = await self._load(inp, wf_id)
        started_on = inp.started_on or agenda.today
        workflow.upsert_search_attributes([LIFE_EVENT.value_set("lifecycle"), STAGE.value_set(agenda.stage)])

        while True:
            if self._died:  # the death is recorded: the lifecycle ends here, nothing more is sent
                self._past.append(TimelineEntry(on=workflow.now().date(), key="ended/death", kind="ended",
                                                summary="lifecycle ended: death recorded", state="done"))
                await workflow.wait_condition(workflow.all_handlers_finished)
                return
            if self._reports or self._agenda_stale:
                self._agenda_stale = False
                await self._apply_reports(inp, wf_id)
                agenda = await self._load(inp, wf_id, started_on)
                continue
            done = {e.key for e in self._past}
            pending = [i for i in agenda.items if i.key not in done]
            now = workflow.now()
            due = [i for i in pending if i.at <= now]
            if due:
                for item in due:
                    if self._died:
                        break
                    await self._act(item, wf_id, inp)
                continue
            stage_over = agenda.stage_ends_at is not None and agenda.stage_ends_at <= now
            if stage_over or now >= run_ends or workflow.info().get_current_history_length() > MAX_HISTORY_EVENTS:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(LifecycleInput(person_id=inp.person_id, started_on=started_on,
                                                        past=self._past, pending_reports=self._reports))
            wake = min([t for t in (pending[0].at if pending else None, agenda.stage_ends_at, run_ends) if t])
            with contextlib.suppress(asyncio.TimeoutError):  # woken by the timer, not by a report
                await workflow.wait_condition(lambda: bool(self._reports) or self._died or self._agenda_stale,
                                              timeout=max(wake - now, timedelta(0)))

    async def _load(self, inp: LifecycleInput, wf_id: str, started_on: date | None = None) -> Agenda:
        agenda = await self._step("load_agenda", AgendaRequest(person_id=inp.person_id, workflow_id=wf_id,
                                                                as_of=inp.started_on or started_on,
                                                                now=workflow.now()), Agenda)
        self._agenda = agenda
        self._died = self._died or agenda.deceased
        return agenda

    async def _act(self, item: AgendaItem, wf_id: str, inp: LifecycleInput) -> None:
        outcome = await self._step("act_on_agenda_item",
                                   AgendaAction(person_id=inp.person_id, workflow_id=wf_id, item=item),
                                   ActionOutcome, summary=item.summary)
        self._past.append(TimelineEntry(on=item.on, key=item.key, kind=item.kind, summary=item.summary,
                                        state="done" if outcome.done else "skipped", detail=outcome.detail))

    async def _apply_reports(self, inp: LifecycleInput, wf_id: str) -> None:
        while self._reports:
            report = self._reports[0]
            outcome = await self._step("apply_dose_report",
                                       DoseApplication(person_id=inp.person_id, workflow_id=wf_id, report_id=report),
                                       ActionOutcome)
            self._reports.pop(0)
            today = self._agenda.today if self._agenda else workflow.now().date()
            self._past.append(TimelineEntry(on=today, key=f"dose-report/{report}", kind="dose_reported",
                                            summary="dose reported by the health station",
                                            state="done" if outcome.done else "skipped", detail=outcome.detail))

    async def _step(self, name: str, arg: BaseModel, result_type: type[T], *, summary: str | None = None) -> T:
        result: Any
        if self._local_steps:
            result = await workflow.execute_local_activity(
                name, arg, result_type=result_type, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
                local_retry_threshold=LOCAL_RETRY_THRESHOLD, summary=summary)
        else:
            result = await workflow.execute_activity(
                name, arg, result_type=result_type, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
                summary=summary)
        return result  # type: ignore[no-any-return]

    def _on_report(self, report: uuid.UUID) -> None:
        if report not in self._seen_reports:
            self._seen_reports.add(report)
            self._reports.append(report)

    @workflow.signal
    def dose_reported(self, signal: DoseReported) -> None:
        """The health station reported a dose (the report is in the registry); the same report is applied once."""
        self._on_report(signal.report_id)

    @workflow.signal
    def agenda_changed(self, change: AgendaChanged) -> None:
        """The registry changed what the agenda is computed from (a move, a corrected date of birth): reload it."""
        workflow.logger.info("agenda changed: %s", change.reason)
        self._agenda_stale = True

    @workflow.signal
    def citizen_died(self) -> None:
        """The citizen's death is recorded (by DeathRegistrationWorkflow): stop at once."""
        self._died = True

    @workflow.query
    def timeline(self) -> list[TimelineEntry]:
        """What happened (done / skipped), and what is next (the first pending item) and planned, with dates."""
        done = {e.key for e in self._past}
        upcoming = [] if self._died else [i for i in (self._agenda.items if self._agenda else []) if i.key not in done]
        return [*self._past, *(TimelineEntry(on=i.on, key=i.key, kind=i.kind, summary=i.summary,
                                             state="next" if n == 0 else "planned")
                               for n, i in enumerate(upcoming))]
