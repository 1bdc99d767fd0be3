"""The demo's second act: after the births, a move, a correction and a death go through NATS like any event,
and the notices each produced are printed. Event ids are fixed, so running the demo again adds nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from tqdm import tqdm

from events.birth_corrected import BirthCorrected, make_correction_event
from events.death_registered import DeathRegistered, make_death_event
from events.envelope import encode_event
from events.residence_changed import ResidenceChanged, make_residence_event
from infra.settings import Settings
from registry.db import Registry, make_engine
from registry.models import InboxMessage, Notification, Person
from registry.seed import VN_TZ, family, first_family_in
from rules.producers import producer_source

DEMO_NAMESPACE = uuid.UUID("5d1e0c1b-2a3f-4b5c-9d8e-7f6a5b4c3d2e")
KINDS = ("residence_changed", "birth_corrected", "death_registered")


def office(province_code: str) -> str:
    """The demo's civil-status office in a province."""
    return producer_source("civil", province_code, "demo-office")


def _event_id(name: str) -> str:
    return str(uuid.uuid5(DEMO_NAMESPACE, name))


def life_events(mover_id_number: str, corrected_registration: str, corrected_name: str) -> list[tuple[str, bytes]]:
    """(what it is, the CloudEvent bytes): a child moves to another household in Hà Nội, a twin's name is
    corrected in Đà Nẵng, a father dies in Khánh Hòa (his wife declares it)."""
    hanoi = first_family_in("001")
    new_home = family(hanoi.index + 63)  # the next seeded household in the same province
    khanh_hoa = first_family_in("056")
    move = ResidenceChanged(person_id_number=mover_id_number, household_number=new_home.household_number,
                            moved_on=date(2026, 11, 20), office_code="UBND-DEMO", province_code="001")
    correction = BirthCorrected.model_validate({
        "registration_number": corrected_registration, "province_code": "048", "office_code": "UBND-DEMO",
        "corrected_at": datetime(2026, 11, 22, 9, 0, tzinfo=VN_TZ).isoformat(),
        "corrected": {"full_name": corrected_name}})
    death = DeathRegistered.model_validate({
        "registration_number": "DEMO26KT0001", "registered_at": datetime(2026, 11, 18, 9, 0, tzinfo=VN_TZ).isoformat(),
        "office_code": "UBND-DEMO", "province_code": "056",
        "deceased": {"person_id_number": khanh_hoa.father.id_number, "full_name": khanh_hoa.father.full_name,
                     "date_of_death": "2026-11-15"},
        "declarant": {"full_name": khanh_hoa.mother.full_name, "id_number": khanh_hoa.mother.id_number,
                      "relationship": "spouse"}})
    return [
        ("a move (Hà Nội)", encode_event(make_residence_event(move, event_id=_event_id("move"),
                                                              source=office(move.province_code)))),
        ("a correction of a name (Đà Nẵng)",
         encode_event(make_correction_event(correction, event_id=_event_id("correction"),
                                                 source=office(correction.province_code)))),
        ("a death (Khánh Hòa)", encode_event(make_death_event(death, event_id=_event_id("death"),
                                                                      source=office(death.province_code)))),
    ]


async def notices_by_kind(registry: Registry) -> dict[str, list[tuple[Notification, list[str]]]]:
    async with registry.unit_of_work() as session:
        rows = (await session.scalars(select(Notification).where(Notification.stage.in_(KINDS)))).all()
        out: dict[str, list[tuple[Notification, list[str]]]] = {k: [] for k in KINDS}
        for n in rows:
            roles = list((await session.scalars(select(InboxMessage.recipient_role)
                                                .where(InboxMessage.notification_id == n.id))).all())
            out[n.stage].append((n, roles))
    return out


async def run_life_events(settings: Settings, *, publish_raw: Callable[..., Awaitable[list[dict[str, Any]]]],
                          mover_id_number: str | None, corrected_registration: str, corrected_name: str,
                          wait_seconds: float) -> bool:
    if mover_id_number is None:
        print("life events skipped: the Hà Nội child has no ID number yet")
        return False
    events = life_events(mover_id_number, corrected_registration, corrected_name)
    results = await publish_raw(settings, [raw for _, raw in events], progress=False)
    print()
    print("=" * 100)
    print("Life events after the births: " + ", ".join(what for what, _ in events) +
          f" ({sum(not r['duplicate'] for r in results)} new)")
    registry = Registry(make_engine(settings.database_url, pool_size=2))
    deadline = time.monotonic() + wait_seconds
    try:
        with tqdm(total=len(KINDS), unit="event", desc="agencies at work") as bar:
            while True:
                found = await notices_by_kind(registry)
                bar.update(sum(bool(v) for v in found.values()) - bar.n)
                if all(found.values()) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.25)
        async with registry.unit_of_work() as session:
            deceased = (await session.scalars(select(Person.full_name).where(Person.status == "deceased"))).all()
    finally:
        await registry.close()
    for kind in KINDS:
        for notice, roles in found[kind]:
            print(f"\n  {kind} — to {', '.join(sorted(roles)) or 'nobody on record'}:")
            print(f"  {notice.subject}")
            print("\n".join("    " + line for line in notice.body.rstrip().splitlines()))
    print(f"\n  deceased in the registry: {len(deceased)}; no reminder or notice goes to them any more")
    return all(found.values())
