"""Failures say what is wrong without personal data; a taken port is named with the variable that moves it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.common import run_step
from infra.settings import Settings
from infra.stack import EmbeddedStack, StackError


class FakeDatabaseError(Exception):
    pass


async def _fails_with(exc: Exception) -> None:
    raise exc


async def test_unexpected_failure_is_reported_by_type_without_its_message() -> None:
    leaky = FakeDatabaseError('duplicate key value (full_name)=(Nguyễn Thị Lan, 079190004321)')
    with pytest.raises(ApplicationError) as caught:
        await run_step("identity", _fails_with(leaky))
    assert caught.value.type == "FakeDatabaseError"
    assert "Nguyễn" not in str(caught.value) and "079190004321" not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_own_application_errors_pass_unchanged() -> None:
    own = ApplicationError("child has no personal ID number yet", type="NotReady")
    with pytest.raises(ApplicationError) as caught:
        await run_step("insurance", _fails_with(own))
    assert caught.value is own


def test_taken_port_is_named_with_its_setting(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = EmbeddedStack(Settings(LIFEEVENTS_DATA_DIR=tmp_path, NATS_PORT=port, NATS_URL=None,
                                       TEMPORAL_ADDRESS="127.0.0.1:1", DATABASE_URL="postgresql://x@127.0.0.1:1/x"))
        with pytest.raises(StackError) as caught:
            stack.start()
    message = str(caught.value)
    assert f"port {port} for NATS is already taken" in message and "NATS_PORT=" in message
