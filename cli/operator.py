"""What an operator reads and repairs: `status`, `inbox`, `dlq`, `supply-household`, `retry-failed`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from cli.common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    READER,
    CliError,
    cli_nats,
    cli_temporal,
    log_unmatched_read,
    print_json,
    registry_for,
    require_id_number,
)
from infra.settings import Settings


# ---- finding a registration ---------------------------------------------------------------------------------
async def find_registration(settings: Settings, registration_number: str,
                            province_code: str | None = None) -> tuple[str, str]:
    """``(province, workflow id)`` of the registration with this number; the workflow id is the one stored with
    it (`birth-<province>-<number>`, or `birth-<number>` for registrations received before migration 0004).

    The same number may be issued in two provinces: then ``--province`` says which one is meant.
    """
    from registry.births import registrations_numbered

    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            regs = await registrations_numbered(session, registration_number, province_code)
    finally:
        await registry.close()
    where = f" in province {province_code}" if province_code else ""
    if not regs:
        raise CliError(f"REGISTRATION_NO: no birth registration {registration_number}{where} in the registry",
                       EXIT_NOT_FOUND)
    if len(regs) > 1:
        provinces = ", ".join(r.province_code for r in regs)
        raise CliError(f"REGISTRATION_NO: {registration_number} is registered in provinces {provinces}; "
                       "choose one with --province")
    return regs[0].province_code, regs[0].workflow_id


# ---- reading -----------------------------------------------------------------------------------------------
async def _workflow_state(settings: Settings, workflow_id: str) -> dict[str, Any] | None:
    from temporalio.service import RPCError

    from infra.search_attributes import ATTENTION_REASON, NEEDS_ATTENTION
    from worker import connect_temporal
    from workflows.birth import BirthRegistrationWorkflow

    try:
        client = await asyncio.wait_for(connect_temporal(settings), timeout=5)
        handle = client.get_workflow_handle(workflow_id)
        desc = await handle.describe()
        progress = await asyncio.wait_for(handle.query(BirthRegistrationWorkflow.progress), timeout=5)
    except (RPCError, TimeoutError, OSError, RuntimeError):
        return None
    attrs = desc.typed_search_attributes
    return {"workflow_id": desc.id, "status": desc.status.name if desc.status else None,
            "needs_attention": attrs.get(NEEDS_ATTENTION), "attention_reason": attrs.get(ATTENTION_REASON),
            "stages": {s.stage.value: {"state": s.state, "detail": s.detail} for s in progress}}


async def load_status(settings: Settings, registration_number: str,
                      province_code: str | None = None) -> dict[str, Any] | None:
    from registry.views import birth_status

    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            status = await birth_status(session, registration_number, reader=READER, province_code=province_code)
    finally:
        await registry.close()
    if status is not None:
        workflow = status["workflow"] = await _workflow_state(settings, status["workflow_id"])
        for stage in status["stages"]:  # what the registry cannot show: a stage that does not apply, and why
            live = (workflow or {}).get("stages", {}).get(stage["stage"], {})
            if live.get("state") in ("not_applicable", "needs_attention"):
                stage["state"], stage["detail"] = live["state"], live.get("detail")
    return status


def format_status(s: dict[str, Any]) -> str:
    lines = [f"Birth registration {s['registration_number']} (province {s['province_code']})"]
    wf = s.get("workflow")
    if wf:
        attention = f" — NEEDS ATTENTION: {wf['attention_reason']}" if wf.get("needs_attention") else ""
        lines.append(f"  workflow {wf['workflow_id']}: {wf['status']}{attention}")
    child = s.get("child")
    if child:
        lines.append(f"  child: {child['full_name']} ({child['sex']}, born {child['date_of_birth']})")
        lines.append(f"  personal ID number: {child['personal_id_number'] or '(not yet assigned)'}")
    card = s.get("health_insurance")
    lines.append(f"  health insurance: {card['card_number']} valid {card['valid_from']} to {card['valid_until']}"
                 if card else "  health insurance: (not yet issued)")
    res = s.get("residence")
    basis = {"mother": "the mother's household", "father": "the father's household", "operator": "set by an operator",
             "move": "moved"}.get(res["basis"], res["basis"]) if res else ""
    lines.append(f"  residence: household {res['household_number']} ({basis}), {res['address']}"
                 if res else "  residence: (not yet registered)")
    school = s.get("school")
    lines.append(f"  school: grade 1 in September {school['entry_year']} (ward {school['ward_code']})"
                 if school else "  school: (not yet forecast)")
    plan = s.get("vaccination_plan") or []
    if plan:
        first = ", ".join(f"{d['vaccine']} {d['dose']} {d['due_date']}" for d in plan[:6])
        lines.append(f"  vaccination plan: {len(plan)} doses; first: {first}")
    lines.append("  stages:")
    for st in s["stages"]:
        why = f"  ({st['detail']})" if st.get("detail") else ""
        lines.append(f"    {st['stage']:<26} {st['state']:<8} {st['at'] or ''}{why}")
    return "\n".join(lines)


async def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    province, _ = await find_registration(settings, args.registration_number, args.province)
    status = await load_status(settings, args.registration_number, province)
    if status is None:
        raise CliError(f"REGISTRATION_NO: no birth registration {args.registration_number} in the registry",
                       EXIT_NOT_FOUND)
    print_json(status) if args.json else print(format_status(status))
    return EXIT_OK


async def load_inbox(settings: Settings, id_number: str) -> list[dict[str, Any]] | None:
    from registry.views import family_inbox

    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            return await family_inbox(session, id_number, reader=READER)
    finally:
        await registry.close()


def format_notice(n: dict[str, Any], indent: str = "  ") -> str:
    body = "\n".join(indent + "  " + line for line in n["body"].rstrip().splitlines())
    return f"{indent}[{n['delivered_at'][:19]}] {n['subject']}\n{body}"


async def cmd_inbox(settings: Settings, args: argparse.Namespace) -> int:
    require_id_number(args.id_number)
    notices = await load_inbox(settings, args.id_number)
    if notices is None:
        raise CliError("ID_NUMBER: no citizen with this personal ID number", EXIT_NOT_FOUND)
    if args.json:
        print_json(notices)
    elif not notices:
        print("inbox is empty")
    else:
        print("\n".join(format_notice(n, "") for n in notices))
    return EXIT_OK


async def log_dlq_read(settings: Settings, count: int) -> None:
    """Reading dead letters is an access (reader, the raw fields, how many were shown)."""
    await log_unmatched_read(settings, fields="dead-letter events (raw)",
                             purpose=f"read the dead-letter queue ({count} events)")


async def cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    from nats.js.errors import NotFoundError

    from events.bridge import ORIGINAL_SUBJECT_HEADER, REASON_HEADER
    from infra.nats_identities import OPERATOR

    nc = await cli_nats(settings, OPERATOR, name="dlq-reader")
    entries = []
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(settings.dlq_stream)
        except NotFoundError:
            info = None
        if info is not None and info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(settings.dlq_stream, seq)
                except NotFoundError:
                    continue
                headers = msg.headers or {}
                entries.append({"sequence": seq, "original_subject": headers.get(ORIGINAL_SUBJECT_HEADER),
                                "reason": headers.get(REASON_HEADER), "size": len(msg.data or b""),
                                "data": (msg.data or b"").decode("utf-8", errors="replace")})
    finally:
        await nc.drain()
    await log_dlq_read(settings, len(entries))
    if args.json:
        print_json(entries)
    elif not entries:
        print("no dead-lettered events")
    else:
        for e in entries:
            print(f"#{e['sequence']} {e['original_subject']} ({e['size']} bytes)\n   reason: {e['reason']}")
    return EXIT_OK


async def cmd_supply_household(settings: Settings, args: argparse.Namespace) -> int:
    """Operator repair: register the child of a birth that needs attention in a given household."""
    from sqlalchemy import select

    from registry.models import Household
    from workflows.birth import BirthRegistrationWorkflow, SupplyHousehold

    _, workflow_id = await find_registration(settings, args.registration_number, args.province)
    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            household_id = await session.scalar(
                select(Household.id).where(Household.household_number == args.household_number))
    finally:
        await registry.close()
    if household_id is None:
        raise CliError(f"HOUSEHOLD_NUMBER: no household {args.household_number} in the registry", EXIT_NOT_FOUND)
    client = await cli_temporal(settings)
    handle = client.get_workflow_handle(workflow_id)
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    try:
        result = await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                             SupplyHousehold(household_id=household_id))
    except (WorkflowUpdateFailedError, RPCError) as exc:
        cause = getattr(exc, "cause", None) or exc
        raise CliError(f"REGISTRATION_NO: {getattr(cause, 'message', None) or cause}", EXIT_REFUSED) from exc
    print(result)
    return EXIT_OK


async def cmd_retry_failed(settings: Settings, args: argparse.Namespace) -> int:
    """Operator repair: the failing agency is fixed; run the birth's steps that gave up again."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    from workflows.birth import BirthRegistrationWorkflow

    _, workflow_id = await find_registration(settings, args.registration_number, args.province)
    client = await cli_temporal(settings)
    handle = client.get_workflow_handle(workflow_id)
    try:
        print(await handle.execute_update(BirthRegistrationWorkflow.retry_failed_steps))
    except (WorkflowUpdateFailedError, RPCError) as exc:
        cause = getattr(exc, "cause", None) or exc
        raise CliError(f"REGISTRATION_NO: {getattr(cause, 'message', None) or cause}", EXIT_REFUSED) from exc
    return EXIT_OK
