"""Passwords, SCRAM verifiers, the folder reachability check and the two database connections in the settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import tempfile
from pathlib import Path

from infra import pg_access
from infra.settings import Settings


def test_a_role_password_is_generated_once_into_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    first = pg_access.role_password(tmp_path, pg_access.APP_ROLE)
    assert len(first) >= 40 and first == pg_access.role_password(tmp_path, pg_access.APP_ROLE)
    assert first != pg_access.role_password(tmp_path, pg_access.OWNER_ROLE)
    path = pg_access.secrets_dir(tmp_path) / pg_access.APP_ROLE
    assert path.stat().st_mode & 0o777 == 0o600
    assert pg_access.secrets_dir(tmp_path).stat().st_mode & 0o777 == 0o700


def test_the_scram_verifier_lets_the_server_check_a_client_proof() -> None:
    salt = b"0123456789abcdef"
    verifier = pg_access.scram_verifier("pencil", salt=salt, iterations=4096)
    method, rest = verifier.split("$", 1)
    params, keys = rest.split("$")
    iterations, salt_b64 = params.split(":")
    stored_b64, server_b64 = keys.split(":")
    assert (method, int(iterations), base64.b64decode(salt_b64)) == ("SCRAM-SHA-256", 4096, salt)
    # what a client holding the password proves: H(ClientKey) equals the stored key, and the server key matches
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(stored_b64) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server_b64) == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert pg_access.scram_verifier("pencil", salt=salt) == verifier
    assert pg_access.scram_verifier("pencil2", salt=salt) != verifier


def test_bootstrap_sql_carries_verifiers_never_the_passwords(tmp_path: Path) -> None:
    on_server, in_database = pg_access.bootstrap_sql(tmp_path, "lifeevents")
    for role in (pg_access.OWNER_ROLE, pg_access.APP_ROLE):
        assert pg_access.role_password(tmp_path, role) not in on_server
    assert on_server.count("PASSWORD 'SCRAM-SHA-256$4096:") == 2
    assert "NOSUPERUSER NOCREATEROLE" in on_server and "NOBYPASSRLS" in on_server
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in in_database


def test_first_unreachable_names_the_folder_others_may_not_search() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # /tmp is searchable by all (pytest's own base may not be)
        _check_first_unreachable(Path(tmp))


def _check_first_unreachable(base: Path) -> None:
    closed = base / "closed"
    inner = closed / "data"
    inner.mkdir(parents=True)
    base.chmod(0o755)
    closed.chmod(0o750)
    stranger, strangers_group = 54_321, 54_321
    assert pg_access.first_unreachable(inner, stranger, {strangers_group}) == closed
    closed.chmod(0o701)
    assert pg_access.first_unreachable(inner, stranger, {strangers_group}) is None
    closed.chmod(0o700)
    owner = closed.stat().st_uid
    assert pg_access.first_unreachable(inner, owner, set()) is None


def test_embedded_urls_use_the_app_role_for_the_service_and_the_owner_for_migrations(tmp_path: Path) -> None:
    s = Settings(LIFEEVENTS_DATA_DIR=tmp_path, POSTGRES_PORT=6543, DATABASE_URL=None,  # type: ignore[call-arg]
                 DATABASE_OWNER_URL=None)
    app_password = pg_access.role_password(tmp_path, pg_access.APP_ROLE)
    owner_password = pg_access.role_password(tmp_path, pg_access.OWNER_ROLE)
    assert s.database_url == f"postgresql+asyncpg://lifeevents_app:{app_password}@127.0.0.1:6543/lifeevents"
    assert s.database_owner_url == f"postgresql+asyncpg://lifeevents_owner:{owner_password}@127.0.0.1:6543/lifeevents"
    assert s.database_app_role == pg_access.APP_ROLE


def test_external_urls_migrate_with_the_owner_url_else_the_service_url(tmp_path: Path) -> None:
    app = "postgresql://svc:a@db.example:5432/reg"
    alone = Settings(LIFEEVENTS_DATA_DIR=tmp_path, DATABASE_URL=app, DATABASE_OWNER_URL=None)  # type: ignore[call-arg]
    assert alone.database_owner_url == alone.database_url == "postgresql+asyncpg://svc:a@db.example:5432/reg"
    both = Settings(LIFEEVENTS_DATA_DIR=tmp_path, DATABASE_URL=app,  # type: ignore[call-arg]
                    DATABASE_OWNER_URL="postgresql://ddl:b@db.example:5432/reg", DATABASE_SSL="require")
    assert both.database_owner_url == "postgresql+asyncpg://ddl:b@db.example:5432/reg?ssl=require"
    assert both.database_app_role == "svc"
    assert not pg_access.secrets_dir(tmp_path).exists()  # no passwords generated for external servers
