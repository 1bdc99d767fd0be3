"""Polling with a deadline (no fixed sleeps) for tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], *, until: Callable[[T], bool], within: float,
                     what: str, every: float = 0.2) -> T:
    """Call `probe` until `until(result)` holds; fail with the last result after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {within:.0f}s; last value: {result!r}")
        await asyncio.sleep(every)


def history_plaintext(history_json: dict[str, object]) -> str:
    """All of a workflow history as text, with every payload's base64 `data` decoded — so a search for
    personal data cannot miss what the data converter wrote."""
    import base64
    import json

    parts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if "metadata" in node and isinstance(data, str):
                try:
                    parts.append(base64.b64decode(data).decode("utf-8", errors="replace"))
                except ValueError:
                    parts.append(data)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            parts.append(node)

    walk(history_json)
    return json.dumps(history_json, ensure_ascii=False) + "\n" + "\n".join(parts)
