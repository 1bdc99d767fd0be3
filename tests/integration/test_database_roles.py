"""The registry's roles: the service connects as a role that can neither administer the server, read its files
nor rewrite the ledger; passwords are required (SCRAM); the owner role runs the migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from infra import pg_access
from infra.settings import Settings
from registry.migrate import upgrade_async

pytestmark = pytest.mark.integration


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def app(settings: Settings, service: Any) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(_dsn(settings.database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_service_connects_as_the_application_role_without_superuser_powers(
        app: asyncpg.Connection) -> None:
    row = await app.fetchrow("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
                             "FROM pg_roles WHERE rolname = current_user")
    assert dict(row) == {"rolname": pg_access.APP_ROLE, "rolsuper": False, "rolcreaterole": False,
                         "rolcreatedb": False, "rolbypassrls": False}
    memberships = await app.fetchval("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                                     "WHERE r.rolname = current_user")
    assert memberships == 0  # not in pg_read_server_files, pg_execute_server_program, ...


@pytest.mark.parametrize("statement", [
    "CREATE ROLE intruder LOGIN",
    "SELECT pg_read_file('/etc/hostname')",
    "COPY (SELECT 1) TO '/tmp/lifeevents-app-role-copy'",
    "CREATE TABLE public.intruder (id int)",
    "UPDATE data_access_log SET purpose = 'rewritten'",
    "DELETE FROM data_access_log",
    "TRUNCATE data_access_log",
    "ALTER TABLE data_access_log DISABLE TRIGGER data_access_chain",
    "DROP TRIGGER data_access_chain ON data_access_log",
    "UPDATE alembic_version SET version_num = '0001'",
])
async def test_the_application_role_is_refused(app: asyncpg.Connection, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app.execute(statement)


async def test_the_application_role_appends_to_the_ledger_through_the_chaining_trigger(
        app: asyncpg.Connection) -> None:
    transaction = app.transaction()
    await transaction.start()
    try:
        entry = await app.fetchrow(
            "INSERT INTO data_access_log (agency, purpose, fields) VALUES ('test-agency', 'role-test', 'none') "
            "RETURNING seq, prev_hash, hash")
    finally:
        await transaction.rollback()  # the session's ledger stays as the other tests left it
    assert entry["seq"] >= 1 and len(entry["hash"]) == 64 and entry["hash"] != entry["prev_hash"]


@pytest.mark.parametrize("password", [None, "wrong-password"])
async def test_a_connection_without_the_password_is_refused(settings: Settings, service: Any,
                                                             password: str | None) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(host="127.0.0.1", port=settings.postgres_port, user=pg_access.APP_ROLE,
                              database="lifeevents", password=password or "")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(host="127.0.0.1", port=settings.postgres_port, user=pg_access.SUPERUSER,
                              database="postgres", password=password or "")


async def test_passwords_are_kept_in_files_only_their_owner_reads(settings: Settings, service: Any) -> None:
    folder = pg_access.secrets_dir(settings.data_dir)
    assert folder.stat().st_mode & 0o777 == 0o700
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([pg_access.SUPERUSER, pg_access.OWNER_ROLE, pg_access.APP_ROLE])
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}
    hba = (settings.data_dir / "postgres" / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    assert rules and {rule[-1] for rule in rules} == {"scram-sha-256"}


async def test_the_owner_role_owns_the_tables_and_runs_the_migrations(settings: Settings, service: Any) -> None:
    await upgrade_async(settings.database_owner_url, settings.database_app_role)  # at head: a no-op, allowed
    owner = await asyncpg.connect(_dsn(settings.database_owner_url))
    try:
        row = await owner.fetchrow("SELECT current_user, rolsuper, rolcreaterole FROM pg_roles "
                                   "WHERE rolname = current_user")
        assert dict(row) == {"current_user": pg_access.OWNER_ROLE, "rolsuper": False, "rolcreaterole": False}
        owners = await owner.fetch("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        assert [r["tableowner"] for r in owners] == [pg_access.OWNER_ROLE]
        async with owner.transaction():  # a later migration's new table is granted to the app role by default
            await owner.execute("CREATE TABLE later_revision_table (id int)")
            granted = await owner.fetchval("SELECT has_table_privilege($1, 'later_revision_table', 'INSERT')",
                                           pg_access.APP_ROLE)
            await owner.execute("DROP TABLE later_revision_table")
        assert granted is True
    finally:
        await owner.close()
