"""Composition root: the one place that builds the registry, the NATS and Temporal clients, the agencies,
the worker and the bridge. Everything else receives what it needs.

    python worker.py            # worker + event bridge (Ctrl-C / SIGTERM drains and stops)
    python worker.py --no-bridge
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import (
    civil,
    corrections,
    death,
    education,
    health,
    identity,
    insurance,
    lifecycle,
    moves,
    notification,
    residence,
    school_planning,
)
from activities.common import agency_activity
from activities.stages import birth_at_once, stage_with_notice
from events.birth_corrected import BirthCorrectedHandler
from events.birth_registered import BirthHandler
from events.bridge import EventBridge
from events.death_registered import DeathHandler
from events.notice_dispatch import NoticeDispatcher
from events.poison import connect_tolerant
from events.residence_changed import ResidenceChangedHandler
from events.streams import ensure_streams
from events.vaccination_administered import VaccinationHandler
from infra.codec import data_converter
from infra.health import OperatorEndpoint, database_check, nats_check, temporal_check
from infra.metrics import temporal_metrics
from infra.nats_identities import ADMIN, BRIDGE, DISPATCHER, NOTIFIER, connect_options
from infra.process import exit_now
from infra.redaction import install_redaction
from infra.schedules import ensure_school_plan_schedule
from infra.search_attributes import SearchAttributeError, ensure_registered
from infra.settings import PROJECT_ROOT, Settings
from infra.telemetry import configure_tracing, instrument_engine
from registry.changes import RegistryCorrectionRecords, RegistryMoveRecords
from registry.db import Registry, make_engine
from registry.deaths import RegistryDeathRecords
from registry.vaccinations import RegistryVaccinationRecords
from workflows.birth import BirthRegistrationWorkflow
from workflows.changes import BirthCorrectionWorkflow, ResidenceChangeWorkflow
from workflows.changes_client import TemporalChanges
from workflows.client import TemporalBirthStarter, TemporalDeathStarter
from workflows.contracts import STAGE_STEPS
from workflows.death import DeathRegistrationWorkflow
from workflows.lifecycle import CitizenLifecycleWorkflow
from workflows.lifecycle_client import TemporalLifecycles
from workflows.school_plan import SchoolCapacityPlanWorkflow

log = logging.getLogger("lifeevents.worker")

WORKFLOWS = [BirthRegistrationWorkflow, CitizenLifecycleWorkflow, DeathRegistrationWorkflow, ResidenceChangeWorkflow,
             BirthCorrectionWorkflow, SchoolCapacityPlanWorkflow]


WORKFLOW_RUNNER = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_all_modules())
"""The sandbox still refuses non-deterministic calls (clocks, randomness, I/O) inside workflow code, but imports
nothing anew: by default every new workflow run re-imported its module and all it imports (14 % of the worker's
CPU at full load, two runs per birth). The workflows keep their state on the instance, never in a module."""


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """`runtime`: `infra.metrics.temporal_metrics().runtime` to record the SDK's metrics (default: none)."""
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter(settings), interceptors=[TracingInterceptor()],
                                tls=temporal_tls(settings),
                                api_key=settings.temporal_api_key.get_secret_value()
                                if settings.temporal_api_key else None, runtime=runtime)


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """TLS to Temporal from the settings: a CA and a client certificate (mTLS) when given, else the system's
    roots; no TLS for the embedded dev server."""
    if not settings.temporal_uses_tls:
        return False

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path else None

    return TLSConfig(server_root_ca_cert=read(settings.temporal_tls_ca_file),
                     client_cert=read(settings.temporal_tls_cert_file),
                     client_private_key=read(settings.temporal_tls_key_file),
                     domain=settings.temporal_tls_server_name)


async def connect_nats(settings: Settings, identity: str, *, name: str | None = None,
                       **options: Any) -> NatsClient:
    """A NATS connection authenticated as `identity` (see infra/nats_identities.py); reconnects forever unless
    `options` say otherwise."""
    options = {"max_reconnect_attempts": -1, "reconnect_time_wait": 0.5, **options}
    return await connect_tolerant(settings.nats_url, name=name or f"lifeevents-{identity}",
                                  **connect_options(settings.nats_credentials_dir, identity), **options)


async def provision_streams(settings: Settings) -> None:
    """Create or update the streams, as the one identity allowed to (then let that connection go)."""
    nc = await connect_nats(settings, ADMIN, max_reconnect_attempts=3)
    try:
        await ensure_streams(nc.jetstream(), settings)
    finally:
        await nc.drain()


def build_activities(registry: Registry, js: JetStreamContext, lifecycles: TemporalLifecycles, *,
                     data_dir: Path = PROJECT_ROOT / ".data") -> list[Any]:
    """Each agency port with its built-in implementation; swap one here to call a real agency API."""
    gateway = notification.NatsNoticeGateway(js)
    notices = notification.RegistryNotificationAgency(registry, gateway)
    health_agency = health.RegistryHealthAgency(registry)
    citizen = lifecycle.RegistryLifecycleAgency(registry, notices, lifecycle.NatsTaskGateway(js))
    deaths = death.RegistryDeathAgencies(registry, notices)
    movers = moves.RegistryMoveAgencies(registry, notices)
    fixes = corrections.RegistryCorrectionAgencies(registry, notices)
    changes = TemporalChanges(lifecycles.client, lifecycles.task_queue)
    plans = school_planning.RegistrySchoolPlanning(registry, school_planning.NatsDepartmentGateway(js), data_dir)
    stage_steps: dict[str, tuple[str, Callable[[Any], Awaitable[Any]]]] = {
        "record_birth": (civil.AGENCY, civil.RegistryCivilRegistry(registry).record_birth),
        "assign_personal_id": (identity.AGENCY, identity.RegistryIdentityAgency(registry).assign_personal_id),
        "register_residence": (residence.AGENCY, residence.RegistryResidenceAgency(registry).register_residence),
        "issue_child_health_card": (insurance.AGENCY, insurance.RegistryInsuranceAgency(registry).issue_child_card),
        "plan_vaccinations": (health.AGENCY, health_agency.plan_vaccinations),
        "add_to_school_forecast": (education.AGENCY,
                                   education.RegistryEducationAgency(registry).add_to_school_forecast),
    }
    return [
        *(agency_activity(name, agency, step) for name, (agency, step) in stage_steps.items()),
        *(stage_with_notice(name, agency, STAGE_STEPS[name], step, notices.notify_family, registry)
          for name, (agency, step) in stage_steps.items()),
        birth_at_once(stage_steps, notices.notify_family, registry, lifecycles.start_for_child),
        agency_activity("apply_dose_report", health.AGENCY, health_agency.apply_dose_report),
        agency_activity("notify_family", notification.AGENCY, notices.notify_family),
        agency_activity("load_agenda", lifecycle.AGENCY, citizen.load_agenda),
        agency_activity("act_on_agenda_item", lifecycle.AGENCY, citizen.act_on_agenda_item),
        agency_activity("start_citizen_lifecycle", lifecycle.AGENCY, lifecycles.start_for_child),
        agency_activity("record_death", death.AGENCY, deaths.record_death),
        agency_activity("stop_citizen_lifecycle", lifecycle.AGENCY, lifecycles.stop_for_death),
        agency_activity("deregister_residence", residence.AGENCY, deaths.deregister_residence),
        agency_activity("close_health_insurance_card", insurance.AGENCY, deaths.close_health_insurance_card),
        agency_activity("record_funeral_allowance", "social-welfare", deaths.record_funeral_allowance),
        agency_activity("notify_death", notification.AGENCY, deaths.notify_death),
        agency_activity("move_residence", moves.RESIDENCE, movers.move_residence),
        agency_activity("move_school_forecast", moves.EDUCATION, movers.move_school_forecast),
        agency_activity("notify_residence_changed", notification.AGENCY, movers.notify_residence_changed),
        agency_activity("signal_agenda_changed", lifecycle.AGENCY, changes.signal_agenda_changed),
        agency_activity("apply_birth_correction", corrections.CIVIL, fixes.apply_birth_correction),
        agency_activity("reissue_personal_id", corrections.IDENTITY, fixes.reissue_personal_id),
        agency_activity("replan_vaccinations_after_correction", corrections.HEALTH, fixes.replan_vaccinations),
        agency_activity("update_child_card_after_correction", corrections.INSURANCE, fixes.update_child_card),
        agency_activity("recompute_school_entry_after_correction", corrections.EDUCATION,
                        fixes.recompute_school_entry),
        agency_activity("notify_birth_corrected", notification.AGENCY, fixes.notify_birth_corrected),
        agency_activity("compute_school_plan", school_planning.AGENCY, plans.compute_school_plan),
        agency_activity("write_school_reports", school_planning.AGENCY, plans.write_school_reports),
        agency_activity("notify_education_departments", school_planning.AGENCY,
                        plans.notify_education_departments),
    ]


@dataclass
class Service:
    settings: Settings
    registry: Registry
    nc: NatsClient
    js: JetStreamContext
    """The notifier's: the agencies publish notices, tasks and department notices with it."""
    client: Client
    bridge_js: JetStreamContext
    """The bridge's: it consumes the event streams and dead-letters with it."""
    dispatch_js: JetStreamContext
    """The notice dispatcher's: it consumes the notices announced on NOTIFY."""

    def worker(self, **options: Any) -> Worker:
        s = self.settings
        options = {"max_concurrent_workflow_tasks": s.worker_workflow_tasks,
                   "max_concurrent_local_activities": s.worker_local_activities,
                   "max_concurrent_activities": s.worker_activities, **options}
        return Worker(self.client, task_queue=self.settings.task_queue, workflows=WORKFLOWS,
                      workflow_runner=WORKFLOW_RUNNER,
                      activities=build_activities(self.registry, self.js,
                                                  TemporalLifecycles(self.client, self.settings.task_queue),
                                                  data_dir=self.settings.data_dir),
                      **options)

    def notice_dispatcher(self) -> NoticeDispatcher:
        """Pushes each announced notice to its recipients once (the built-in channel: the app inbox)."""
        return NoticeDispatcher(self.dispatch_js, self.registry, self.settings)

    def bridge(self) -> EventBridge:
        """One handler per event type; each port's built-in implementation is chosen here."""
        queue = self.settings.task_queue
        return EventBridge(self.bridge_js, [
            BirthHandler(self.registry, TemporalBirthStarter(self.client, queue)),
            VaccinationHandler(RegistryVaccinationRecords(self.registry), TemporalLifecycles(self.client, queue)),
            DeathHandler(RegistryDeathRecords(self.registry), TemporalDeathStarter(self.client, queue)),
            ResidenceChangedHandler(RegistryMoveRecords(self.registry), TemporalChanges(self.client, queue)),
            BirthCorrectedHandler(RegistryCorrectionRecords(self.registry), TemporalChanges(self.client, queue)),
        ], self.settings)

    @contextlib.asynccontextmanager
    async def operator_endpoint(self, port: int, host: str = "127.0.0.1") -> AsyncIterator[int]:
        """/metrics, /healthz, /readyz (NATS, Temporal, database) while the block runs; yields the bound port."""
        sdk = temporal_metrics().collector
        endpoint = OperatorEndpoint({"nats": nats_check(self.nc), "temporal": temporal_check(self.client),
                                     "database": database_check(self.registry.engine)})

        async def drain_sdk_metrics() -> None:
            while True:  # the SDK's buffer is bounded: fold it in between scrapes too
                await asyncio.sleep(5)
                sdk.absorb()

        drain = asyncio.create_task(drain_sdk_metrics())
        try:
            async with endpoint.serving(host, port) as bound:
                yield bound
        finally:
            drain.cancel()


@contextlib.asynccontextmanager
async def service(settings: Settings, *, runtime: Runtime | None = None) -> AsyncIterator[Service]:
    registry = Registry(make_engine(settings.database_url, pool_size=settings.database_pool_size))
    instrument_engine(registry.engine)
    await provision_streams(settings)
    nc = await connect_nats(settings, NOTIFIER)
    bridge_nc = await connect_nats(settings, BRIDGE)
    dispatch_nc = await connect_nats(settings, DISPATCHER)
    js = nc.jetstream()
    try:
        client = await connect_temporal(settings, runtime)
        await ensure_registered(client, settings.temporal_namespace)
        if await ensure_school_plan_schedule(client, settings):
            log.info("created the Temporal Schedule school-capacity-plan (%s)", settings.school_plan_cron)
        yield Service(settings, registry, nc, js, client, bridge_nc.jetstream(), dispatch_nc.jetstream())
    finally:
        await dispatch_nc.drain()
        await bridge_nc.drain()
        await nc.drain()
        await registry.close()


class ServiceTaskDied(RuntimeError):
    """The Temporal worker or the bridge ended without a stop request; the process exits non-zero so that its
    supervisor (systemd, the chaos supervisor, `make run`) restarts it."""


async def wait_for_stop_or_death(tasks: dict[str, asyncio.Task[Any]], stop: asyncio.Event) -> None:
    """Return once `stop` is set; raise ServiceTaskDied (naming the task and its error) if a task ends first."""
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopper, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if stop.is_set():
        return
    for name, task in tasks.items():
        if task.done():
            error = None if task.cancelled() else task.exception()
            detail = f": {type(error).__name__}: {str(error)[:300]}" if error else ""
            raise ServiceTaskDied(f"the {name} task ended without a stop request{detail}")


async def run(settings: Settings, *, with_bridge: bool = True, with_worker: bool = True) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    port = settings.metrics_port if with_worker else settings.bridge_metrics_port
    tracing = configure_tracing(settings, "lifeevents-bridge" if not with_worker else "lifeevents-worker")
    runtime = temporal_metrics().runtime if port is not None else None
    try:
        async with contextlib.AsyncExitStack() as stack:
            svc = await stack.enter_async_context(service(settings, runtime=runtime))
            if port is not None:
                await stack.enter_async_context(svc.operator_endpoint(port, settings.metrics_host))
            tasks: dict[str, asyncio.Task[Any]] = {}
            if with_worker:
                worker = svc.worker()
                tasks["worker"] = asyncio.create_task(worker.run())
            if with_bridge:
                tasks["bridge"] = asyncio.create_task(svc.bridge().run(stop))
                tasks["notice dispatcher"] = asyncio.create_task(svc.notice_dispatcher().run(stop))
            log.info("running: worker=%s bridge=%s (task queue %s)", with_worker, with_bridge, settings.task_queue)
            try:
                await wait_for_stop_or_death(tasks, stop)
            finally:
                stop.set()
                log.info("stopping: draining in-flight work")
                if with_worker:
                    with contextlib.suppress(Exception):
                        await worker.shutdown()
                await asyncio.gather(*tasks.values(), return_exceptions=True)
    finally:
        if tracing is not None:
            tracing.shutdown()  # flushes the last spans, also when a task died
    log.info("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-bridge", action="store_true", help="run the Temporal worker only")
    parser.add_argument("--bridge-only", action="store_true", help="run the NATS→Temporal bridge only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    try:
        asyncio.run(run(Settings(), with_bridge=not args.no_bridge, with_worker=not args.bridge_only))
    except SearchAttributeError as err:
        log.error("cannot start: %s", err)
        exit_now(1)
    except ServiceTaskDied as err:
        log.error("exiting: %s", err)
        exit_now(1)


if __name__ == "__main__":
    main()
    exit_now(0)
