"""Run the service as N worker and M bridge OS processes (`worker.py --no-bridge` / `--bridge-only`), each in its
own process group, restarted when it exits as systemd's `Restart=always` would.

Used by `make run WORKERS=4 BRIDGES=2` and by the chaos supervisor (which kill -9s them on purpose).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.settings import PROJECT_ROOT, Settings

WORKER_SCRIPT = PROJECT_ROOT / "worker.py"
RESTART_DELAY_SECONDS = 1.0
"""Pause before a restart (systemd's RestartSec), so a process that cannot start does not spin."""


def child_environment(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a service process: the caller's, plus the stack's data dir and ports, so the child
    finds the same servers, payload keys and credentials."""
    env = {**os.environ, "LIFEEVENTS_DATA_DIR": str(settings.data_dir), "TEMPORAL_PORT": str(settings.temporal_port),
           "NATS_PORT": str(settings.nats_port), "POSTGRES_PORT": str(settings.postgres_port),
           "TEMPORAL_TASK_QUEUE": settings.task_queue}
    for name in ("TEMPORAL_ADDRESS", "NATS_URL", "DATABASE_URL"):
        env.pop(name, None)
    if not settings.embedded_temporal:
        env["TEMPORAL_ADDRESS"] = settings.temporal_address
    if not settings.embedded_nats:
        env["NATS_URL"] = settings.nats_url
    if settings.database_url_override:
        env["DATABASE_URL"] = settings.database_url_override
    return {**env, **(extra or {})}


@dataclass
class ServiceProcess:
    """One `worker.py` process, kept running until `stop()`; its output is appended to `log_path` (None: this
    process's own output)."""

    name: str
    role_flag: str  # --no-bridge | --bridge-only | "" (both)
    env: dict[str, str]
    log_path: Path | None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    _proc: asyncio.subprocess.Process | None = None
    _stopping: bool = False
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_running(), name=self.name)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def _keep_running(self) -> None:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, str(WORKER_SCRIPT), *([self.role_flag] if self.role_flag else [])]
        while not self._stopping:
            with contextlib.ExitStack() as files:
                log = files.enter_context(open(self.log_path, "ab")) if self.log_path else None  # noqa: ASYNC230
                self._proc = await asyncio.create_subprocess_exec(
                    *args, env=self.env, cwd=PROJECT_ROOT, stdout=log, stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
            self.starts += 1
            self.exit_codes.append(await self._proc.wait())
            if not self._stopping:
                await asyncio.sleep(RESTART_DELAY_SECONDS)

    def kill(self, sig: int = signal.SIGKILL) -> bool:
        """Send `sig` to the process group; False if no process is running right now."""
        pid = self.pid
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        return True

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """SIGTERM (the process drains), SIGKILL after `grace_seconds`; no restart afterwards."""
        self._stopping = True
        self.kill(signal.SIGTERM)
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
        except TimeoutError:
            self.kill(signal.SIGKILL)
            await self._task


@dataclass
class ServiceFleet:
    workers: list[ServiceProcess]
    bridges: list[ServiceProcess]

    @classmethod
    def build(cls, settings: Settings, workers: int, bridges: int, *, extra_env: Mapping[str, str] | None = None,
              log_files: bool = True) -> ServiceFleet:
        """`log_files`: each process logs to `<data dir>/logs/<name>.log`; otherwise to this process's output."""
        env = child_environment(settings, extra_env)
        logs = settings.data_dir.resolve() / "logs"

        def process(name: str, flag: str) -> ServiceProcess:
            return ServiceProcess(name, flag, env, logs / f"{name}.log" if log_files else None)

        return cls([process(f"worker-{i + 1}", "--no-bridge") for i in range(workers)],
                   [process(f"bridge-{i + 1}", "--bridge-only") for i in range(bridges)])

    @property
    def processes(self) -> list[ServiceProcess]:
        return [*self.workers, *self.bridges]

    def start(self) -> None:
        for proc in self.processes:
            proc.start()

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes))
