"""CitizenLifecycleWorkflow over years of virtual time, with the citizen's records in memory (same rules, same
templates as the registry agencies)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import rules
from activities.in_memory import InMemoryCitizen
from tests.helpers import eventually, save_history_if_requested
from workflows.change_contracts import AgendaChanged
from workflows.contracts import DoseReported, LifecycleInput, TimelineEntry
from workflows.lifecycle import CitizenLifecycleWorkflow
from workflows.lifecycle_client import citizen_workflow_id, history_lengths

MAX_EVENTS_PER_RUN = 300


class Lifecycles:
    def __init__(self, env: WorkflowEnvironment) -> None:
        self.env = env
        self.task_queue = f"lifecycle-test-{uuid.uuid4()}"
        self.handles: list[WorkflowHandle[CitizenLifecycleWorkflow, None]] = []

    async def start(self, citizen: InMemoryCitizen) -> WorkflowHandle[CitizenLifecycleWorkflow, None]:
        handle = await self.env.client.start_workflow(
            CitizenLifecycleWorkflow.run, LifecycleInput(person_id=citizen.person_id),
            id=citizen_workflow_id(citizen.person_id), task_queue=self.task_queue)
        self.handles.append(handle)
        return handle


async def today(env: WorkflowEnvironment) -> date:
    return rules.local_date(await env.get_current_time())


async def sleep_until(env: WorkflowEnvironment, on: date) -> None:
    """Skip virtual time to the day after `on` (past that day's notice hour)."""
    now = await env.get_current_time()
    target = rules.notice_time(on) + timedelta(hours=1)
    if target > now:
        await env.sleep(target - now)


@pytest_asyncio.fixture(loop_scope="session")
async def lifecycles(env: WorkflowEnvironment) -> AsyncIterator[Lifecycles]:
    runner = Lifecycles(env)
    yield runner
    for handle in runner.handles:  # a lifecycle never ends by itself: end it while it sleeps
        if (await handle.describe()).status.name == "RUNNING":  # type: ignore[union-attr]
            await handle.terminate(reason="test over")


def notice_keys(citizen: InMemoryCitizen) -> list[str]:
    """Item keys in the order they were first sent."""
    return list(dict.fromkeys(n.key.partition("/")[2] for n in citizen.notices))


async def test_birth_to_fourteen_every_notice_once_in_order(env: WorkflowEnvironment, lifecycles: Lifecycles) -> None:
    born = await today(env)
    citizen = InMemoryCitizen(date_of_birth=born)
    until = rules.add_months(born, 12 * 14)
    expected = [i for i in rules.citizen_agenda(rules.CitizenFacts(
        born, tuple(rules.DoseFact(d.vaccine, d.dose, d.due_date, None, d.overdue)
                    for d in rules.vaccination_plan(born)),
        rules.health_insurance_validity(born)[1], rules.school_entry_year(born)), born) if i.on < until]
    assert {"id_card_first", "school_enrolment", "insurance_ending", "dose_overdue"} <= {i.kind for i in expected}

    async with Worker(env.client, task_queue=lifecycles.task_queue, workflows=[CitizenLifecycleWorkflow],
                      activities=citizen.activities):
        handle = await lifecycles.start(citizen)
        await sleep_until(env, until)
        timeline = await handle.query(CitizenLifecycleWorkflow.timeline)

    assert notice_keys(citizen) == [i.key for i in expected]
    roles = Counter((n.key, n.recipient_role) for n in citizen.notices)
    assert set(roles.values()) == {1}, "a notice went twice to the same recipient"
    assert {role for _, role in roles} == {"mother", "father"}  # the child is not yet 14 for any of them
    sent = {n.key.partition("/")[2]: n.on for n in citizen.notices}
    assert all(sent[i.key] == i.on for i in expected), "a notice went out on the wrong day"
    assert [e.key for e in timeline if e.state == "done"] == [i.key for i in expected]
    assert next(e for e in timeline if e.state == "next").kind == "id_card_renewal"

    lengths = await history_lengths(env.client, handle)
    assert len(lengths) >= 14 // 8 + 1, "runs must continue as new (stage boundaries)"
    assert max(lengths) < MAX_EVENTS_PER_RUN, f"largest run has {max(lengths)} events"
    print(f"\n14 years: {len(expected)} items, {len(citizen.notices)} notices, runs {lengths}")


def entries(timeline: list[TimelineEntry], kind: str) -> list[TimelineEntry]:
    return [e for e in timeline if e.kind == kind]


async def test_dose_reported_late_replans_and_escalates_once(env: WorkflowEnvironment,
                                                             lifecycles: Lifecycles) -> None:
    born = await today(env)
    citizen = InMemoryCitizen(date_of_birth=born)
    first_due = citizen.doses[("DPT_VGB_HIB", 1)].due_date
    assert citizen.doses[("OPV", 1)].due_date == first_due == citizen.doses[("ROTA", 1)].due_date
    given_on = first_due + timedelta(days=5)

    async with Worker(env.client, task_queue=lifecycles.task_queue, workflows=[CitizenLifecycleWorkflow],
                      activities=citizen.activities):
        handle = await lifecycles.start(citizen)
        await sleep_until(env, given_on)
        report = citizen.report_dose("DPT_VGB_HIB", 1, given_on)
        await handle.signal(CitizenLifecycleWorkflow.dose_reported, DoseReported(report_id=report))
        await handle.signal(CitizenLifecycleWorkflow.dose_reported, DoseReported(report_id=report))  # redelivered
        second = citizen.report_dose("DPT_VGB_HIB", 1, given_on)  # the same dose, reported again
        await handle.signal(CitizenLifecycleWorkflow.dose_reported, DoseReported(report_id=second))
        timeline = await eventually(lambda: handle.query(CitizenLifecycleWorkflow.timeline),
                                    lambda t: len(entries(t, "dose_reported")) == 2, what="both reports handled")
        assert [e.state for e in entries(timeline, "dose_reported")] == ["done", "skipped"]

        # the later DPT doses keep the minimum interval of 1 month after the late first dose
        assert citizen.doses[("DPT_VGB_HIB", 1)].administered_on == given_on
        assert citizen.doses[("DPT_VGB_HIB", 2)].due_date == rules.add_months(given_on, 1)
        assert citizen.doses[("DPT_VGB_HIB", 3)].due_date == rules.add_months(rules.add_months(given_on, 1), 1)
        assert citizen.doses[("OPV", 2)].due_date == rules.add_months(born, 3)  # other vaccines unchanged

        await sleep_until(env, first_due + timedelta(days=31))
        timeline = await handle.query(CitizenLifecycleWorkflow.timeline)
        history = await handle.fetch_history()

    overdue_key = f"dose-overdue/{first_due}"
    assert [e.key for e in entries(timeline, "dose_overdue") if e.state == "done"][-1] == overdue_key
    assert [e.key for e in entries(timeline, "dose_overdue")].count(overdue_key) == 1
    tasks = [t for t in citizen.health_station_tasks if t[2] == first_due]
    assert tasks == [("OPV", 1, first_due), ("ROTA", 1, first_due)]  # DPT 1 was given: not escalated
    escalation = [n for n in citizen.notices if n.key.endswith(overdue_key)]
    assert Counter(n.recipient_role for n in escalation) == {"mother": 1, "father": 1}
    replanned = rules.add_months(given_on, 1)
    assert any(e.key == f"dose-reminder/{replanned}" and "DPT_VGB_HIB 2" in e.summary for e in timeline), \
        "the re-planned dose gets its own reminder"
    # new runs take their steps as local activities: markers, no activity tasks (LOCAL_STEPS_PATCH)
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)
    assert sum(e.HasField("marker_recorded_event_attributes") for e in history.events) > 10
    save_history_if_requested("lifecycle_dose_reported", history)  # recorded before the local steps
    save_history_if_requested("lifecycle_local_steps", history)


async def test_late_registration_tells_overdue_doses_at_once_and_only_the_future(
        env: WorkflowEnvironment, lifecycles: Lifecycles) -> None:
    registered = await today(env)
    born = rules.add_months(registered, -10)
    citizen = InMemoryCitizen(date_of_birth=born, registered_on=registered)
    overdue = {k for k, d in citizen.doses.items() if d.overdue_at_planning}
    assert ("DPT_VGB_HIB", 1) in overdue and ("MEASLES", 1) in overdue
    assert ("HEPB_BIRTH", 1) not in citizen.doses  # a birth dose only within 7 days of birth

    async with Worker(env.client, task_queue=lifecycles.task_queue, workflows=[CitizenLifecycleWorkflow],
                      activities=citizen.activities):
        handle = await lifecycles.start(citizen)
        timeline = await eventually(lambda: handle.query(CitizenLifecycleWorkflow.timeline),
                                    lambda t: any(e.state == "next" for e in t), what="agenda loaded")
    assert all(e.on >= registered for e in timeline), "nothing planned in the child's past"
    assert not any(e.kind == "dose_due" and e.on == registered for e in timeline), \
        "overdue doses are told by the plan notice, not again as due today"
    assert citizen.notices == []


async def test_death_at_five_months_stops_every_notice_at_once(env: WorkflowEnvironment,
                                                               lifecycles: Lifecycles) -> None:
    born = await today(env)
    citizen = InMemoryCitizen(date_of_birth=born)
    died = rules.add_months(born, 5) + timedelta(days=2)

    async with Worker(env.client, task_queue=lifecycles.task_queue, workflows=[CitizenLifecycleWorkflow],
                      activities=citizen.activities):
        handle = await lifecycles.start(citizen)
        await sleep_until(env, died)
        sent_before = len(citizen.notices)
        assert sent_before > 0 and all(n.on <= died for n in citizen.notices)
        citizen.deceased_on = died  # DeathRegistrationWorkflow's first step, then the signal
        await handle.signal(CitizenLifecycleWorkflow.citizen_died)
        await handle.result()  # the lifecycle ends at once
        await sleep_until(env, rules.add_months(born, 14))
        timeline = await handle.query(CitizenLifecycleWorkflow.timeline)

    assert len(citizen.notices) == sent_before and all(n.on <= died for n in citizen.notices)
    assert timeline[-1].kind == "ended" and not any(e.state in ("next", "planned") for e in timeline)
    assert not any(t[2] > died for t in citizen.health_station_tasks)


async def test_agenda_changed_reloads_the_agenda(env: WorkflowEnvironment, lifecycles: Lifecycles) -> None:
    born = await today(env)
    citizen = InMemoryCitizen(date_of_birth=born)
    async with Worker(env.client, task_queue=lifecycles.task_queue, workflows=[CitizenLifecycleWorkflow],
                      activities=citizen.activities):
        handle = await lifecycles.start(citizen)
        await eventually(lambda: handle.query(CitizenLifecycleWorkflow.timeline),
                         lambda t: any(e.state == "next" for e in t), what="agenda loaded")
        # the registry changed (a corrected date of birth re-planned the doses): the lifecycle is told
        corrected = born + timedelta(days=10)
        for (vaccine, dose), record in list(citizen.doses.items()):
            record.due_date = next(d.due_date for d in rules.vaccination_plan(corrected, as_of=born)
                                   if (d.vaccine, d.dose) == (vaccine, dose))
        await handle.signal(CitizenLifecycleWorkflow.agenda_changed,
                            AgendaChanged(reason="birth-correction", change_id=uuid.uuid4()))
        dpt2 = citizen.doses[("DPT_VGB_HIB", 2)].due_date
        timeline = await eventually(lambda: handle.query(CitizenLifecycleWorkflow.timeline),
                                    lambda t: any(e.key == f"dose-due/{dpt2}" for e in t), what="agenda reloaded")
    assert not any(e.key == f"dose-due/{rules.add_months(born, 3)}" for e in timeline)
