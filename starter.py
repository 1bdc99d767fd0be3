"""Command line of the life-event service (`python starter.py --help`).

Every command takes `--json` where it prints something a program may read, and exits non-zero on error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import string
import sys
from collections.abc import Callable, Coroutine
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cli import lifecycle as lifecycle_commands
from cli.common import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, READER, CliError
from cli.common import print_json as _print_json
from cli.common import registry_for as _registry
from events.models import encode_event, make_birth_event
from infra.settings import Settings


# ---- migrate / seed ----------------------------------------------------------------------------------------
async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from registry.migrate import upgrade_async

    await upgrade_async(settings.database_url)
    print("database migrated to the latest revision")
    return EXIT_OK


async def cmd_seed_population(settings: Settings, args: argparse.Namespace) -> int:
    from registry.seed import seed_population

    if args.count < 1:
        raise CliError("count: must be a positive number of families")
    registry = _registry(settings)
    try:
        with tqdm(total=args.count, unit="family", desc="seeding population", disable=args.json) as bar:
            await seed_population(registry, args.count, progress=bar.update)
    finally:
        await registry.close()
    if args.json:
        _print_json({"families": args.count, "persons": args.count * 2})
    else:
        print(f"population ready: {args.count} households, {args.count * 2} parents (re-running adds no duplicates)")
    return EXIT_OK


# ---- publishing --------------------------------------------------------------------------------------------
def _subject_and_id(raw_event: Any, raw: bytes) -> tuple[str, str]:
    """Subject by the event's type and province (an unknown type gets a subject where it is dead-lettered)."""
    from events.streams import subject_for

    province = "unknown"
    event_id = hashlib.sha256(raw).hexdigest()
    event_type = None
    if isinstance(raw_event, dict):
        event_type = raw_event.get("type")
        data = raw_event.get("data")
        if isinstance(data, dict) and isinstance(data.get("province_code"), str) and data["province_code"].isalnum():
            province = data["province_code"]
        if isinstance(raw_event.get("id"), str) and raw_event["id"]:
            event_id = raw_event["id"]
    return subject_for(event_type, province), event_id


async def publish_raw(settings: Settings, events: list[bytes], *, progress: bool = True) -> list[dict[str, Any]]:
    """Publish as a civil-status office or health station would: subject by type and province, `Nats-Msg-Id` =
    CloudEvent id."""
    from events.streams import ensure_streams, stream_for
    from worker import connect_nats

    nc = await connect_nats(settings, name="civil-status-publisher")
    results = []
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        for raw in tqdm(events, unit="event", desc="publishing", disable=not progress or len(events) < 5):
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            subject, event_id = _subject_and_id(parsed, raw)
            ack = await js.publish(subject, raw, headers={"Nats-Msg-Id": event_id},
                                   stream=stream_for(settings, subject))
            results.append({"event_id": event_id, "subject": subject, "stream_sequence": ack.seq,
                            "duplicate": bool(ack.duplicate)})
    finally:
        await nc.drain()
    return results


def _events_from_file(path: Path) -> list[bytes]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"FILE: cannot read {path}: {exc.strerror}") from exc
    try:
        content = json.loads(text)
    except ValueError:
        return [text.encode()]  # published as is: the bridge dead-letters it with the reason
    items = content if isinstance(content, list) else [content]
    return [json.dumps(item, ensure_ascii=False).encode() for item in items]


async def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    results = await publish_raw(settings, _events_from_file(Path(args.file)))
    if args.json:
        _print_json(results)
    else:
        for r in results:
            dup = " (duplicate: already in the stream)" if r["duplicate"] else ""
            print(f"published {r['event_id']} on {r['subject']} as #{r['stream_sequence']}{dup}")
    return EXIT_OK


async def cmd_simulate_births(settings: Settings, args: argparse.Namespace) -> int:
    import rules
    from registry.seed import family, synthetic_birth

    if args.count < 1:
        raise CliError("N: must be a positive number of births")
    if args.province and not rules.is_known_province(args.province):
        raise CliError(f"--province: unknown province code '{args.province}'")
    population = await _population_size(settings)
    if population == 0:
        raise CliError("no population yet: run `python starter.py seed-population 1000` first")
    codes = sorted(rules.provinces())
    candidates = [i for i in range(population) if not args.province or codes[i % len(codes)] == args.province]
    if not candidates:
        raise CliError(f"--province: no seeded household in province {args.province}; seed more families")
    rng = random.Random()
    today = date.today()
    events = []
    for _ in tqdm(range(args.count), unit="birth", desc="generating", disable=args.json):
        fam = family(rng.choice(candidates))
        reg_no = "SIM" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=11))
        dob = today - timedelta(days=rng.randrange(3, 40))
        payload = synthetic_birth(fam, registration_number=reg_no, date_of_birth=dob,
                                  sex=rng.choice(["male", "female"]), language=rng.choice(["vi", "vi", "en"]))
        events.append(encode_event(make_birth_event(payload)))
    results = await publish_raw(settings, events, progress=not args.json)
    if args.json:
        _print_json(results)
    else:
        print(f"published {len(results)} synthetic births")
    return EXIT_OK


async def _population_size(settings: Settings) -> int:
    from sqlalchemy import func, select

    from registry.models import Household

    registry = _registry(settings)
    try:
        async with registry.unit_of_work() as session:
            return int(await session.scalar(select(func.count()).select_from(Household)) or 0)
    finally:
        await registry.close()


# ---- reading -----------------------------------------------------------------------------------------------
async def _workflow_state(settings: Settings, registration_number: str) -> dict[str, Any] | None:
    from temporalio.service import RPCError

    from infra.search_attributes import ATTENTION_REASON, NEEDS_ATTENTION
    from worker import connect_temporal
    from workflows.birth import BirthRegistrationWorkflow
    from workflows.client import birth_workflow_id

    try:
        client = await asyncio.wait_for(connect_temporal(settings), timeout=5)
        handle = client.get_workflow_handle(birth_workflow_id(registration_number))
        desc = await handle.describe()
        progress = await asyncio.wait_for(handle.query(BirthRegistrationWorkflow.progress), timeout=5)
    except (RPCError, TimeoutError, OSError, RuntimeError):
        return None
    attrs = desc.typed_search_attributes
    return {"workflow_id": desc.id, "status": desc.status.name if desc.status else None,
            "needs_attention": attrs.get(NEEDS_ATTENTION), "attention_reason": attrs.get(ATTENTION_REASON),
            "stages": {s.stage.value: {"state": s.state, "detail": s.detail} for s in progress}}


async def load_status(settings: Settings, registration_number: str) -> dict[str, Any] | None:
    from registry.views import birth_status

    registry = _registry(settings)
    try:
        async with registry.unit_of_work() as session:
            status = await birth_status(session, registration_number, reader=READER)
    finally:
        await registry.close()
    if status is not None:
        workflow = status["workflow"] = await _workflow_state(settings, registration_number)
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
    lines.append(f"  residence: household {res['household_number']} ({res['basis']}'s), {res['address']}"
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
    status = await load_status(settings, args.registration_number)
    if status is None:
        raise CliError(f"REGISTRATION_NO: no birth registration {args.registration_number} in the registry",
                       EXIT_NOT_FOUND)
    _print_json(status) if args.json else print(format_status(status))
    return EXIT_OK


async def load_inbox(settings: Settings, id_number: str) -> list[dict[str, Any]] | None:
    from registry.views import family_inbox

    registry = _registry(settings)
    try:
        async with registry.unit_of_work() as session:
            return await family_inbox(session, id_number, reader=READER)
    finally:
        await registry.close()


def format_notice(n: dict[str, Any], indent: str = "  ") -> str:
    body = "\n".join(indent + "  " + line for line in n["body"].rstrip().splitlines())
    return f"{indent}[{n['delivered_at'][:19]}] {n['subject']}\n{body}"


async def cmd_inbox(settings: Settings, args: argparse.Namespace) -> int:
    import rules

    problem = rules.personal_id_problem(args.id_number)
    if problem:
        raise CliError(f"ID_NUMBER: {problem}")
    notices = await load_inbox(settings, args.id_number)
    if notices is None:
        raise CliError("ID_NUMBER: no citizen with this personal ID number", EXIT_NOT_FOUND)
    if args.json:
        _print_json(notices)
    elif not notices:
        print("inbox is empty")
    else:
        print("\n".join(format_notice(n, "") for n in notices))
    return EXIT_OK


async def cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    from nats.js.errors import NotFoundError

    from events.bridge import ORIGINAL_SUBJECT_HEADER, REASON_HEADER
    from worker import connect_nats

    nc = await connect_nats(settings, name="dlq-reader")
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
    if args.json:
        _print_json(entries)
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
    from worker import connect_temporal
    from workflows.birth import BirthRegistrationWorkflow, SupplyHousehold
    from workflows.client import birth_workflow_id

    registry = _registry(settings)
    try:
        async with registry.unit_of_work() as session:
            household_id = await session.scalar(
                select(Household.id).where(Household.household_number == args.household_number))
    finally:
        await registry.close()
    if household_id is None:
        raise CliError(f"HOUSEHOLD_NUMBER: no household {args.household_number} in the registry", EXIT_NOT_FOUND)
    client = await connect_temporal(settings)
    handle = client.get_workflow_handle(birth_workflow_id(args.registration_number))
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    try:
        result = await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                             SupplyHousehold(household_id=household_id))
    except (WorkflowUpdateFailedError, RPCError) as exc:
        cause = getattr(exc, "cause", None) or exc
        raise CliError(f"REGISTRATION_NO: {getattr(cause, 'message', None) or cause}") from exc
    print(result)
    return EXIT_OK


async def cmd_retry_failed(settings: Settings, args: argparse.Namespace) -> int:
    """Operator repair: the failing agency is fixed; run the birth's steps that gave up again."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    from worker import connect_temporal
    from workflows.birth import BirthRegistrationWorkflow
    from workflows.client import birth_workflow_id

    client = await connect_temporal(settings)
    handle = client.get_workflow_handle(birth_workflow_id(args.registration_number))
    try:
        print(await handle.execute_update(BirthRegistrationWorkflow.retry_failed_steps))
    except (WorkflowUpdateFailedError, RPCError) as exc:
        cause = getattr(exc, "cause", None) or exc
        raise CliError(f"REGISTRATION_NO: {getattr(cause, 'message', None) or cause}") from exc
    return EXIT_OK


# ---- demo --------------------------------------------------------------------------------------------------
async def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from demo import run_demo

    return await run_demo(settings, publish_raw=publish_raw, load_status=load_status, load_inbox=load_inbox,
                          format_status=format_status, format_notice=format_notice, wait_seconds=args.timeout)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "migrate": cmd_migrate, "seed-population": cmd_seed_population, "publish": cmd_publish,
    "simulate-births": cmd_simulate_births, "status": cmd_status, "inbox": cmd_inbox, "dlq": cmd_dlq,
    "supply-household": cmd_supply_household, "retry-failed": cmd_retry_failed, "demo": cmd_demo,
    **lifecycle_commands.COMMANDS,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    add("migrate", "apply the database migrations")
    add("seed-population", "create a synthetic population of parents and households").add_argument(
        "count", type=int, metavar="N", help="number of households (each with a mother and a father)")
    add("publish", "publish the CloudEvent(s) in FILE (an object or an array) to NATS").add_argument(
        "file", metavar="FILE")
    p = add("simulate-births", "publish N valid synthetic births")
    p.add_argument("count", type=int, metavar="N")
    p.add_argument("--province", metavar="CODE", help="province code, e.g. 079")
    add("status", "each stage of a birth with state and time, the ID number, card, residence, plan").add_argument(
        "registration_number", metavar="REGISTRATION_NO")
    add("inbox", "the family's notices, oldest first").add_argument("id_number", metavar="ID_NUMBER")
    add("dlq", "dead-lettered events with their reasons")
    p = add("supply-household", "operator: register a waiting child in a household (needs-attention repair)")
    p.add_argument("registration_number", metavar="REGISTRATION_NO")
    p.add_argument("household_number", metavar="HOUSEHOLD_NUMBER")
    add("retry-failed", "operator: run again the steps of a birth whose agency gave up").add_argument(
        "registration_number", metavar="REGISTRATION_NO")
    add("demo", "publish the sample births and print what the state did").add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for the stages (default 180)")
    lifecycle_commands.add_commands(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        return asyncio.run(COMMANDS[args.command](settings, args))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except (OSError, TimeoutError) as exc:
        print(f"error: cannot reach a server ({type(exc).__name__}: {exc}); is the stack running? "
              "(`make demo` or `make run`)", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        name = type(exc).__name__
        if "Connect" in name or "NoServers" in name or "RPCError" in name:
            print(f"error: cannot reach a server ({name}: {exc}); is the stack running?", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
