"""Repairs in bulk or after a fix upstream: `dlq replay SEQUENCE [--file FIXED]`, `retry-failed --all`."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cli.common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    CliError,
    cli_nats,
    cli_temporal,
    log_unmatched_read,
    print_json,
)
from infra.settings import Settings

REPLAYED_FROM_HEADER = "Replayed-From-Dlq"
KEPT_HEADERS = ("content-type",)
"""Besides `ce-*` (a binary-mode event's attributes), the headers of a dead letter that a replay sends again."""
RETRY_CONCURRENCY = 8


# ---- dlq replay ------------------------------------------------------------------------------------------------
async def read_dead_letter(settings: Settings, sequence: int) -> tuple[str, bytes, dict[str, str]]:
    """(original subject, bytes, headers) of dead letter #`sequence`, read as the operator identity."""
    from nats.js.errors import NotFoundError

    from events.bridge import ORIGINAL_SUBJECT_HEADER
    from infra.nats_identities import OPERATOR

    nc = await cli_nats(settings, OPERATOR, name="dlq-replay")
    try:
        try:
            msg = await nc.jetstream().get_msg(settings.dlq_stream, sequence)
        except NotFoundError:
            raise CliError(f"SEQUENCE: no dead letter #{sequence} in {settings.dlq_stream} (`starter.py dlq` lists "
                           "them)", EXIT_NOT_FOUND) from None
    finally:
        await nc.drain()
    headers = dict(msg.headers or {})
    subject = headers.get(ORIGINAL_SUBJECT_HEADER)
    if not subject:
        raise CliError(f"SEQUENCE: dead letter #{sequence} does not say where it came from (no "
                       f"{ORIGINAL_SUBJECT_HEADER} header)")
    return subject, msg.data or b"", headers


def fixed_event(path: Path) -> bytes:
    """The corrected event an operator supplies: one CloudEvent (a JSON object)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"--file: cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"--file: {path} is not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(document, dict):
        raise CliError(f"--file: {path} must hold one event (a JSON object)")
    return json.dumps(document, ensure_ascii=False).encode()


async def replay_dead_letter(settings: Settings, sequence: int, fixed: Path | None) -> dict[str, Any]:
    """Publish a dead letter again, as is (its cause was elsewhere and is fixed) or corrected (`fixed`), as the
    producer of its province, so the bridge handles it like a new arrival. The message id names the dead letter
    and the bytes: the same replay twice within the duplicate window is stored once, and after it the registry's
    own once-per-event keys hold."""
    from cli.publishing import _subject_and_id, publisher_identity
    from events.streams import stream_for

    subject, data, headers = await read_dead_letter(settings, sequence)
    out_headers = {k: v for k, v in headers.items() if k.lower().startswith("ce-") or k.lower() in KEPT_HEADERS}
    if fixed is not None:
        data = fixed_event(fixed)
        subject = _subject_and_id(json.loads(data), data)[0]
        out_headers = {}
    out_headers[REPLAYED_FROM_HEADER] = str(sequence)
    out_headers["Nats-Msg-Id"] = f"replay-{sequence}-{hashlib.sha256(data).hexdigest()[:24]}"
    refusals: list[str] = []
    nc = await cli_nats(settings, publisher_identity(subject), errors=refusals, name="dlq-replay")
    try:
        try:
            ack = await nc.jetstream().publish(subject, data, headers=out_headers,
                                               stream=stream_for(settings, subject))
        except Exception as exc:
            why = refusals[-1] if refusals else (str(exc) or type(exc).__name__)
            raise CliError(f"dead letter #{sequence} not replayed on {subject}: {why}", EXIT_REFUSED) from exc
    finally:
        await nc.drain()
    await log_replay(settings, sequence)
    return {"dead_letter": sequence, "subject": subject, "stream": ack.stream, "stream_sequence": ack.seq,
            "duplicate": bool(ack.duplicate), "corrected": fixed is not None}


async def log_replay(settings: Settings, sequence: int) -> None:
    await log_unmatched_read(settings, fields="dead-letter event (raw)", purpose=f"replay dead letter #{sequence}")


async def cmd_dlq_replay(settings: Settings, args: argparse.Namespace) -> int:
    if args.sequence is None or args.sequence < 1:
        raise CliError("SEQUENCE: say which dead letter to replay (`starter.py dlq` lists them)")
    result = await replay_dead_letter(settings, args.sequence, Path(args.file) if args.file else None)
    if args.json:
        print_json(result)
    elif result["duplicate"]:
        print(f"dead letter #{args.sequence} was already replayed with these bytes (stream {result['stream']} "
              f"#{result['stream_sequence']}); nothing published again")
    else:
        what = "corrected event" if result["corrected"] else "event"
        print(f"replayed dead letter #{args.sequence}: the {what} is on {result['subject']} as {result['stream']} "
              f"#{result['stream_sequence']}; `starter.py dlq` shows it again if it fails again")
    return EXIT_OK


# ---- retry-failed --all ----------------------------------------------------------------------------------------
def stuck_births_query(province: str | None, reason: str | None) -> str:
    """Births whose agency gave up (AttentionReason `<step>-failing`), optionally of a province or one reason."""
    clauses = ["LifeEvent = 'birth'", "NeedsAttention = true", "ExecutionStatus = 'Running'"]
    if province:
        clauses.append(f"ProvinceCode = '{province}'")
    if reason:
        clauses.append(f"AttentionReason = '{reason}'")
    return " AND ".join(clauses)


async def retry_all(settings: Settings, *, province: str | None, reason: str | None,
                    progress: bool) -> dict[str, Any]:
    """Send `retry_failed_steps` to every matching birth (a few at a time); those with nothing to retry (they wait
    for a household, or were retried meanwhile) are skipped with the workflow's reason."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    from workflows.birth import BirthRegistrationWorkflow

    client = await cli_temporal(settings)
    query = stuck_births_query(province, reason)
    ids = [w.id async for w in client.list_workflows(query)]
    retried: list[str] = []
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    slots = asyncio.Semaphore(RETRY_CONCURRENCY)
    bar = tqdm(total=len(ids), unit="birth", desc="retrying", disable=not progress or len(ids) < 5)

    async def retry(workflow_id: str) -> None:
        async with slots:
            try:
                await client.get_workflow_handle(workflow_id).execute_update(
                    BirthRegistrationWorkflow.retry_failed_steps)
                retried.append(workflow_id)
            except WorkflowUpdateFailedError as exc:
                cause = getattr(exc, "cause", None) or exc
                skipped[workflow_id] = str(getattr(cause, "message", None) or cause)
            except RPCError as exc:
                failed[workflow_id] = f"{exc.status.name}: {exc.message}"
            bar.update()

    try:
        await asyncio.gather(*(retry(i) for i in ids))
    finally:
        bar.close()
    return {"query": query, "matched": len(ids), "retried": sorted(retried), "skipped": skipped, "failed": failed}


async def cmd_retry_all(settings: Settings, args: argparse.Namespace) -> int:
    import rules

    if args.province and not rules.is_known_province(args.province):
        raise CliError(f"--province: unknown province code '{args.province}'")
    if args.reason and not all(c.isalnum() or c in "-_" for c in args.reason):
        raise CliError("--reason: a reason is letters, digits, '-' and '_' (e.g. register_residence-failing)")
    result = await retry_all(settings, province=args.province, reason=args.reason, progress=not args.json)
    if args.json:
        print_json(result)
    else:
        print(f"{result['matched']} birth(s) waiting for an operator matched; retried {len(result['retried'])}, "
              f"skipped {len(result['skipped'])}, failed {len(result['failed'])}")
        for workflow_id, why in sorted({**result["skipped"], **result["failed"]}.items()):
            print(f"  {workflow_id}: {why}")
    return EXIT_REFUSED if result["failed"] else EXIT_OK
