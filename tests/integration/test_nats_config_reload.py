"""A NATS server left running by an older version (its configuration lacks an identity added since) is given the
new configuration when the stack starts again: the server reloads it without a restart and the new identity
connects."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

import worker
from infra.nats_identities import DISPATCHER, NOTIFIER
from infra.settings import Settings
from infra.stack import EmbeddedStack, free_port
from tests.helpers import eventually

pytestmark = pytest.mark.integration


async def _connects(settings: Settings, identity: str) -> bool:
    try:
        nc = await worker.connect_nats(settings, identity, max_reconnect_attempts=0, allow_reconnect=False,
                                       connect_timeout=2)
    except Exception:  # noqa: BLE001 - refused (authorization) is what the test looks for
        return False
    await nc.close()
    return True


async def test_running_nats_reloads_a_configuration_with_a_new_identity(settings: Settings, service: Any,
                                                                        tmp_path: Path) -> None:
    own = Settings(LIFEEVENTS_DATA_DIR=tmp_path, NATS_PORT=free_port(), NATS_URL=None,
                   TEMPORAL_ADDRESS=settings.temporal_address, DATABASE_URL=settings.database_url)
    stack = EmbeddedStack(own, headless_ui=True)
    await asyncio.to_thread(stack.start_nats)
    try:
        conf = tmp_path / "nats.conf"
        current = conf.read_text()
        pid = stack._running_pid("nats")  # noqa: SLF001 - the server the older version left running
        assert pid is not None and f"_INBOX_{DISPATCHER}" in current
        older = "\n".join(line for line in current.splitlines() if f"_INBOX_{DISPATCHER}" not in line)
        assert older != current
        conf.write_text(older + "\n")
        os.kill(pid, signal.SIGHUP)
        await eventually(lambda: _connects(own, DISPATCHER), lambda ok: not ok, what="the dispatcher refused")

        await asyncio.to_thread(stack.start_nats)  # `make demo` / `make run` again, with the server still up
        assert stack._running_pid("nats") == pid  # noqa: SLF001 - not restarted
        assert conf.read_text() == current
        assert await eventually(lambda: _connects(own, DISPATCHER), lambda ok: ok, what="the dispatcher accepted")
        assert await _connects(own, NOTIFIER)
    finally:
        await asyncio.to_thread(stack.stop)
