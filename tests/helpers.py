"""Test helpers shared by the workflow and integration suites."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import WorkflowHistory

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


def payload_texts(node: Any) -> list[str]:
    """Every Payload's data in a history JSON document, decoded (the JSON form holds it base64-encoded)."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and "metadata" in node:
            found.append(base64.b64decode(node["data"]).decode("utf-8", errors="replace"))
        for value in node.values():
            found.extend(payload_texts(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(payload_texts(value))
    return found


def history_plaintext(history_json: dict[str, Any]) -> str:
    """A whole workflow history as searchable text: the JSON plus every payload decoded."""
    return "\n".join([json.dumps(history_json, ensure_ascii=False), *payload_texts(history_json)])


def save_history_if_requested(name: str, history: WorkflowHistory) -> None:
    """With REGENERATE_HISTORIES=1, commit-ready history files are written once (never overwritten)."""
    if os.environ.get("REGENERATE_HISTORIES") != "1":
        return
    path = HISTORIES / f"{name}.json"
    if path.exists():
        return
    HISTORIES.mkdir(exist_ok=True)
    path.write_text(history.to_json() + "\n", encoding="utf-8")
