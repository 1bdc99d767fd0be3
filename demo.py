"""`make demo`: sample births published through NATS exactly as a civil-status system would, then a report
of what the state did for each family. The samples are fixed, so a second run adds nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from tqdm import tqdm

from cli.lifecycle import load_timeline
from demo_life_events import run_life_events
from events.models import BirthRegistered, encode_event, make_birth_event
from infra.settings import Settings
from registry.db import Registry, make_engine
from registry.seed import VN_TZ, first_family_in, synthetic_birth
from registry.views import count_notices
from rules.producers import producer_source
from workflows.contracts import BIRTH_STAGES

DEMO_NAMESPACE = uuid.UUID("0b5c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d")


def sample_births() -> list[BirthRegistered]:
    """Six families in different provinces: one pair of twins, one English-speaking family, one whose mother
    is registered elsewhere (the child follows the father's household), and a birth registered 10 months late."""
    hanoi, hcmc = first_family_in("001"), first_family_in("079")
    danang, cantho = first_family_in("048"), first_family_in("092")
    haiphong = first_family_in("031", mother_in_household=False)
    hue = first_family_in("046")
    return [
        synthetic_birth(hanoi, registration_number="DEMO26HN0001", date_of_birth=date(2026, 11, 2), sex="female",
                        given_name="An"),
        synthetic_birth(hcmc, registration_number="DEMO26HCM0001", date_of_birth=date(2026, 11, 5), sex="male",
                        given_name="Bảo"),
        synthetic_birth(danang, registration_number="DEMO26DN0001", date_of_birth=date(2026, 11, 9), sex="female",
                        given_name="Ngọc", order=1, size=2),
        synthetic_birth(danang, registration_number="DEMO26DN0002", date_of_birth=date(2026, 11, 9), sex="male",
                        given_name="Khang", order=2, size=2),
        synthetic_birth(cantho, registration_number="DEMO26CT0001", date_of_birth=date(2026, 3, 1), sex="male",
                        given_name="Minh", language="en"),
        synthetic_birth(haiphong, registration_number="DEMO26HP0001", date_of_birth=date(2026, 10, 1),
                        sex="female", given_name="Vy"),
        # registered 10 months late: a catch-up vaccination plan, the overdue doses named in the notice
        synthetic_birth(hue, registration_number="DEMO26TTH0001", date_of_birth=date(2026, 1, 10), sex="male",
                        given_name="Phúc", registered_at=datetime(2026, 11, 10, 9, 0, tzinfo=VN_TZ)),
    ]


def sample_events() -> list[bytes]:
    return [encode_event(make_birth_event(b, event_id=str(uuid.uuid5(DEMO_NAMESPACE, b.registration_number)),
                                          source=producer_source("civil", b.province_code, "demo-office"),
                                          time=b.registered_at))
            for b in sample_births()]


async def wait_for_notices(settings: Settings, registrations: list[str], wait_seconds: float) -> dict[str, int]:
    """Poll the outbox until every birth has one notice per stage (or the deadline passes)."""
    expected = len(BIRTH_STAGES)
    registry = Registry(make_engine(settings.database_url, pool_size=2))
    deadline = time.monotonic() + wait_seconds
    counts: dict[str, int] = {}
    try:
        with tqdm(total=expected * len(registrations), unit="stage", desc="agencies at work") as bar:
            while time.monotonic() < deadline:
                async with registry.unit_of_work() as session:
                    counts = await count_notices(session, registrations)
                done = sum(min(expected, counts.get(r, 0)) for r in registrations)
                bar.update(done - bar.n)
                if done == expected * len(registrations):
                    break
                await asyncio.sleep(0.25)
    finally:
        await registry.close()
    return counts


async def print_school_plan(settings: Settings, wait_seconds: float) -> bool:
    """Run the monthly school-capacity plan now (the schedule, triggered) and say where its reports are."""
    import rules
    from worker import connect_temporal
    from workflows.school_plan_client import SchedulePlanMissing, trigger_schedule

    print()
    print("=" * 100)
    try:
        handle = await trigger_schedule(await connect_temporal(settings))
        outcome = await asyncio.wait_for(handle.result(), timeout=wait_seconds)
    except (SchedulePlanMissing, TimeoutError) as exc:
        print(f"School capacity plan: not finished ({exc or 'timed out'})")
        return False
    print(f"School capacity plan {outcome.first_entry_year}-{outcome.first_entry_year + outcome.years - 1} "
          f"(schedule school-capacity-plan, run now; workflow {handle.id})")
    print(f"  reports: {outcome.report_dir}")
    print(f"  index:   {outcome.index}")
    for province in outcome.notified_provinces:  # the index lists every province's report
        html_path = outcome.reports[province][0]
        print(f"    {province} {rules.province_name(province):<24} {outcome.short_wards.get(province, 0):>3} "
              f"ward(s) short of grade-1 places, education department notified: {html_path}")
    print(f"    {len(outcome.reports) - len(outcome.notified_provinces)} other province(s) with room for every "
          "child; each has its report in the index")
    return True


async def run_demo(settings: Settings, *, publish_raw: Callable[..., Awaitable[list[dict[str, Any]]]],
                   load_status: Callable[[Settings, str], Awaitable[dict[str, Any] | None]],
                   load_inbox: Callable[[Settings, str], Awaitable[list[dict[str, Any]] | None]],
                   format_status: Callable[[dict[str, Any]], str],
                   format_notice: Callable[[dict[str, Any]], str], wait_seconds: float) -> int:
    births = sample_births()
    registrations = [b.registration_number for b in births]
    results = await publish_raw(settings, sample_events())
    fresh = sum(not r["duplicate"] for r in results)
    print(f"published {len(results)} birth registrations on NATS ({fresh} new, "
          f"{len(results) - fresh} already in the stream: deduplicated)")
    counts = await wait_for_notices(settings, registrations, wait_seconds)
    unfinished = [r for r in registrations if counts.get(r, 0) < len(BIRTH_STAGES)]
    for birth in births:
        status = await load_status(settings, birth.registration_number)
        print()
        print("=" * 100)
        if status is None:
            print(f"Birth registration {birth.registration_number}: not in the registry yet")
            continue
        print(format_status(status))
        child_id = (status.get("child") or {}).get("personal_id_number")
        notices = await load_inbox(settings, child_id) if child_id else None
        print(f"  notices to the family ({len(notices or [])}):")
        for notice in notices or []:
            print(format_notice(notice))
        timeline = await load_timeline(settings, child_id) if child_id else None
        if timeline:
            coming = [e for e in timeline if e.state in ("next", "planned")][:4]
            print(f"  the lifecycle goes on ({len(timeline)} items; `starter.py timeline {child_id}`), next:")
            for entry in coming:
                print(f"    {entry.on.isoformat()}  {entry.summary}")
    hanoi = await load_status(settings, births[0].registration_number)
    twin = next(b for b in births if b.registration_number == "DEMO26DN0001")
    events_done = await run_life_events(
        settings, publish_raw=publish_raw,
        mover_id_number=((hanoi or {}).get("child") or {}).get("personal_id_number"),
        corrected_registration=twin.registration_number,
        corrected_name=twin.child.full_name.rsplit(" ", 1)[0] + " Ngọc Ánh", wait_seconds=wait_seconds)
    if not await print_school_plan(settings, wait_seconds):
        unfinished.append("school capacity plan")
    print()
    if not events_done:
        unfinished.append("life events")
    if unfinished:
        print(f"still in progress after {wait_seconds:.0f}s: {', '.join(unfinished)} — see the Temporal UI")
    print("The stack keeps running; `make down` stops it. Workflows are named birth-<registration no> and "
          "citizen-<person uuid>.")
    print("See a whole childhood in seconds: .venv/bin/python starter.py fast-forward --years 14")
    print(f"Temporal UI: {settings.temporal_ui_url}")
    return 0 if not unfinished else 1
