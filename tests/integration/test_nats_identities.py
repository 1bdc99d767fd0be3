"""The NATS server itself enforces who may publish what (the embedded stack's nkey identities)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import nats
import pytest
from nats.errors import NoServersError

import worker
from events.models import encode_event, make_birth_event
from infra.nats_identities import BRIDGE, DISPATCHER, NOTIFIER
from infra.settings import Settings
from registry.seed import first_family_in, synthetic_birth
from rules.producers import producer_identity, producer_source
from tests.helpers import eventually
from tests.integration.test_birth_end_to_end import new_registration_number, wait_all_stages
from tests.integration.test_vaccination_events import dead_letters

pytestmark = pytest.mark.integration


async def refusals_when_publishing(settings: Settings, identity: str, subject: str) -> list[str]:
    """Publish one message as `identity` and return the errors the server sent back."""
    errors: list[str] = []

    async def collect(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await worker.connect_nats(settings, identity, error_cb=collect)
    try:
        await nc.publish(subject, b"{}", headers={"Nats-Msg-Id": f"refused-{identity}-{subject}"})
        await nc.flush()
        await eventually(lambda: asyncio.sleep(0, errors), bool, within=10, what=f"the server's answer to {identity}")
    finally:
        await nc.close()
    return errors


async def last_sequence(admin_js: Any, stream: str) -> int:
    return int((await admin_js.stream_info(stream)).state.last_seq)


async def test_an_office_cannot_publish_for_another_province(settings: Settings, service: Any,
                                                             admin_js: Any) -> None:
    before = await last_sequence(admin_js, settings.civil_stream)
    errors = await refusals_when_publishing(settings, producer_identity("civil", "001"),
                                            "civil.079.birth_registered")
    assert any("permissions violation" in e.lower() and "civil.079.birth_registered" in e for e in errors), errors
    assert await last_sequence(admin_js, settings.civil_stream) == before


async def test_an_office_publishes_on_its_own_province(settings: Settings, service: Any) -> None:
    fam = first_family_in("079")
    reg = new_registration_number("N")
    payload = synthetic_birth(fam, registration_number=reg, date_of_birth=date.today() - timedelta(days=3),
                              sex="female")
    nc = await worker.connect_nats(settings, producer_identity("civil", "079"))
    try:
        ack = await nc.jetstream().publish("civil.079.birth_registered", encode_event(make_birth_event(payload)),
                                           stream=settings.civil_stream)
    finally:
        await nc.drain()
    assert ack.stream == settings.civil_stream and ack.seq > 0
    await wait_all_stages(service, [reg])


@pytest.mark.parametrize("identity", [BRIDGE, NOTIFIER, DISPATCHER, producer_identity("health", "079")])
async def test_services_and_health_stations_cannot_publish_births(settings: Settings, service: Any,
                                                                  admin_js: Any, identity: str) -> None:
    before = await last_sequence(admin_js, settings.civil_stream)
    errors = await refusals_when_publishing(settings, identity, "civil.079.birth_registered")
    assert any("permissions violation" in e.lower() for e in errors), errors
    assert await last_sequence(admin_js, settings.civil_stream) == before


async def test_an_unauthenticated_connection_is_refused(settings: Settings, service: Any) -> None:
    errors: list[str] = []

    async def collect(exc: Exception) -> None:
        errors.append(str(exc))

    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(settings.nats_url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5,
                           error_cb=collect)
    assert any("authorization violation" in e.lower() for e in errors), errors


async def test_an_event_whose_source_names_another_province_is_dead_lettered(settings: Settings,
                                                                             service: Any) -> None:
    fam = first_family_in("079")
    payload = synthetic_birth(fam, registration_number=new_registration_number("S"),
                              date_of_birth=date.today() - timedelta(days=3), sex="male")
    forged = encode_event(make_birth_event(payload, source=producer_source("civil", "001", "q-ba-dinh")))
    nc = await worker.connect_nats(settings, producer_identity("civil", "079"))
    try:
        await nc.jetstream().publish("civil.079.birth_registered", forged, stream=settings.civil_stream)
    finally:
        await nc.drain()
    letters = await eventually(lambda: dead_letters(service, settings), lambda d: forged in d, within=30,
                               what="the forged-source event dead-lettered")
    subject, reason = letters[forged]
    assert subject == "civil.079.birth_registered"
    assert "envelope.source" in reason and "province '079'" in reason
