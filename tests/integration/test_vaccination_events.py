"""Vaccination reports through NATS → bridge → registry → the citizen's lifecycle, on the real servers; and
events the bridge cannot serve (unknown citizen, unknown event type) kept in the dead-letter stream."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType

import rules
import worker
from events.envelope import encode_event
from events.vaccination_administered import VaccinationAdministered, make_vaccination_event
from infra.nats_identities import OPERATOR
from infra.settings import Settings
from registry.models import VaccinationReport
from rules.producers import producer_identity
from starter import publish_raw
from tests.helpers import as_sent_by_producer, codec_of, eventually
from tests.integration.test_birth_end_to_end import birth_event, child_of, wait_all_stages
from workflows.lifecycle_client import citizen_workflow_id

pytestmark = pytest.mark.integration


def vaccination_event(id_number: str, *, province: str = "079", event_id: str | None = None,
                      source: str | None = None) -> tuple[str, bytes]:
    payload = VaccinationAdministered(person_id_number=id_number, vaccine="BCG", dose=1,
                                      administered_on=date.today() - timedelta(days=1),
                                      health_station_code="TYT-TEST", province_code=province)
    event = make_vaccination_event(payload, event_id=event_id or str(uuid.uuid4()), source=source)
    return event.id, encode_event(event)


async def dead_letters(service: Any, settings: Settings) -> dict[bytes, tuple[str, str]]:
    """Original bytes (as the producer wrote them) → (original subject, reason) of every dead letter so far."""
    nc = await worker.connect_nats(settings, OPERATOR)
    js = nc.jetstream()
    try:
        try:
            info = await js.stream_info(settings.dlq_stream)
        except NotFoundError:
            return {}
        out: dict[bytes, tuple[str, str]] = {}
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(settings.dlq_stream, seq)
            headers = msg.headers or {}
            out[as_sent_by_producer(msg.data or b"")] = (headers.get("Original-Subject", ""),
                                                         headers.get("Dead-Letter-Reason", ""))
        return out
    finally:
        await nc.drain()


async def test_dose_report_is_kept_once_and_signals_the_lifecycle_with_the_same_report(
        settings: Settings, service: Any, admin_js: Any) -> None:
    reg, raw_birth = birth_event(13, sex="male")
    await publish_raw(settings, [raw_birth], progress=False)
    await wait_all_stages(service, [reg])
    child = await child_of(service, reg)
    assert child.personal_id_number is not None
    province = child.personal_id_number[:3]
    event_id, raw = vaccination_event(child.personal_id_number, province=province)

    # The same CloudEvent twice under different NATS message ids: the broker keeps both, the bridge one report.
    subject = f"health.{province}.vaccination_administered"
    station = await worker.connect_nats(settings, producer_identity("health", province))
    try:
        for msg_id in ("vacc-first", "vacc-second"):
            ack = await station.jetstream().publish(subject, raw, headers={"Nats-Msg-Id": f"{msg_id}-{event_id}"},
                                                    stream=settings.health_stream)
            assert not ack.duplicate
    finally:
        await station.drain()

    async def health_consumer_idle() -> tuple[int, int, int]:
        info = await admin_js.consumer_info(settings.health_stream, settings.bridge_health_durable)
        return info.delivered.stream_seq, info.num_pending, info.num_ack_pending

    await eventually(health_consumer_idle, lambda c: c[0] >= ack.seq and c[1:] == (0, 0), within=30,
                     what="both copies handled")
    async with service.registry.unit_of_work() as session:
        reports = (await session.scalars(select(VaccinationReport)
                                         .where(VaccinationReport.event_id == event_id))).all()
    assert len(reports) == 1
    report = reports[0]
    assert (report.person_id, report.vaccine, report.dose, report.province_code) == (child.id, "BCG", 1, province)

    handle = service.client.get_workflow_handle(citizen_workflow_id(child.id))
    assert (await handle.describe()).id == f"citizen-{child.id}"

    codec = codec_of(service.client)

    async def signals() -> list[str]:
        history = await handle.fetch_history()
        return [codec.decrypt(e.workflow_execution_signaled_event_attributes.input.payloads[0]).data.decode()
                for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]

    sent = await eventually(signals, lambda s: len(s) >= 2, within=30, what="two dose_reported signals")
    assert all(str(report.id) in s for s in sent)  # the same report id both times
    assert child.personal_id_number not in "".join(sent)


async def test_unknown_citizen_and_unknown_event_type_are_dead_lettered_with_reasons(
        settings: Settings, service: Any) -> None:
    nobody = rules.compose_personal_id(rules.personal_id_prefix("079", "female", date(2398, 1, 1)), 4242)
    _, unknown_citizen = vaccination_event(nobody)
    _, birth = birth_event(14)
    death = json.loads(birth)
    death["id"] = str(uuid.uuid4())
    death["type"] = "vn.gov.civil.marriage.registered"
    unknown_type = json.dumps(death).encode()

    published = await publish_raw(settings, [unknown_citizen, unknown_type], progress=False)

    assert [r["subject"] for r in published] == ["health.079.vaccination_administered",
                                                 f"civil.{death['data']['province_code']}.unknown_event_type"]
    entries = await eventually(lambda: dead_letters(service, settings),
                               lambda d: unknown_citizen in d and unknown_type in d, within=30,
                               what="both events dead-lettered, original bytes unchanged")
    subject, reason = entries[unknown_citizen]
    assert subject == published[0]["subject"]
    assert reason == "data.person_id_number: no citizen with this personal ID number" and nobody not in reason
    subject, reason = entries[unknown_type]
    assert subject == published[1]["subject"]
    assert reason == "envelope.type: no handler for event type 'vn.gov.civil.marriage.registered'"
    async with service.registry.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(VaccinationReport)
                                    .where(VaccinationReport.health_station_code == "TYT-TEST")
                                    .where(VaccinationReport.event_id == published[0]["event_id"])) == 0
