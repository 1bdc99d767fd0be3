"""Test helpers shared by the workflow and integration suites."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory

from infra.codec import KEY_ID, EncryptionCodec

T = TypeVar("T")

HISTORIES = Path(__file__).parent / "workflow" / "histories"
"""Committed workflow histories; every one must replay on the current workflow code."""


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, what: str,
                     within: float = 15.0, every: float = 0.05) -> T:
    """Probe until `check` holds (real-time deadline, no fixed sleeps); fail with the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await probe()
        if check(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}; last value: {value!r}")
        await asyncio.sleep(every)


_PUBLISHER_TRACE_CONTEXT = re.compile(rb'^(\s*\{)"traceparent": "[^"]*"(?:, "tracestate": "[^"]*")?(?:, )?')


def as_sent_by_producer(published: bytes) -> bytes:
    """An event's bytes as its producer wrote them: without the trace context `publish_raw` puts in front."""
    return _PUBLISHER_TRACE_CONTEXT.sub(rb"\1", published, count=1)


def payload_texts(node: Any, codec: EncryptionCodec | None = None) -> list[str]:
    """Every Payload's data in a history JSON document, decoded (the JSON form holds it base64-encoded);
    with `codec`, encrypted payloads are decrypted first (without it their ciphertext is returned)."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and "metadata" in node:
            data = base64.b64decode(node["data"])
            if codec is not None:
                data = codec.decrypt(json_format.ParseDict(node, Payload())).data
            found.append(data.decode("utf-8", errors="replace"))
        for value in node.values():
            found.extend(payload_texts(value, codec))
    elif isinstance(node, list):
        for value in node:
            found.extend(payload_texts(value, codec))
    return found


def encryption_key_ids(node: Any) -> list[str | None]:
    """The `encryption-key-id` of every Payload in a history JSON document (None: stored unencrypted)."""
    found: list[str | None] = []
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and isinstance(node.get("metadata"), dict):
            key_id = node["metadata"].get(KEY_ID)
            found.append(base64.b64decode(key_id).decode() if key_id else None)
        for value in node.values():
            found.extend(encryption_key_ids(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(encryption_key_ids(value))
    return found


def codec_of(client: Client) -> EncryptionCodec:
    """The encryption codec of a client built by `worker.connect_temporal` (or the workflow tests' env)."""
    codec = client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec), f"client without payload encryption: {codec!r}"
    return codec


def history_plaintext(history_json: dict[str, Any], codec: EncryptionCodec | None = None) -> str:
    """A whole workflow history as searchable text: the JSON plus every payload decoded (decrypted with `codec`)."""
    return "\n".join([json.dumps(history_json, ensure_ascii=False), *payload_texts(history_json, codec)])


def save_history_if_requested(name: str, history: WorkflowHistory) -> None:
    """With REGENERATE_HISTORIES=1, commit-ready history files are written once (never overwritten)."""
    if os.environ.get("REGENERATE_HISTORIES") != "1":
        return
    path = HISTORIES / f"{name}.json"
    if path.exists():
        return
    HISTORIES.mkdir(exist_ok=True)
    path.write_text(history.to_json() + "\n", encoding="utf-8")


async def read_until(proc: asyncio.subprocess.Process, marker: str, lines: list[str]) -> None:
    """Collect the process's output lines into `lines` until one holds `marker`; fail with the output so far if the
    process ends first (wrap in `asyncio.wait_for` for a deadline)."""
    assert proc.stdout is not None
    while True:
        line = (await proc.stdout.readline()).decode()
        if not line:
            raise AssertionError(f"the process exited before '{marker}':\n{''.join(lines)}")
        lines.append(line)
        if marker in line:
            return
