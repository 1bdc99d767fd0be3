"""Who may do what in the embedded PostgreSQL: generated passwords, SCRAM verifiers, the three roles, and
whether the PostgreSQL system user can reach a folder without anybody changing modes.

Roles: `postgres` (bootstrap superuser, used only by the stack to create the others), `lifeevents_owner`
(owns the database, the schema and every table; migrations run as it) and `lifeevents_app` (the service: reads
and writes rows, may not create roles, read server files, or alter the ledger's history).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

SUPERUSER = "postgres"
OWNER_ROLE = "lifeevents_owner"
APP_ROLE = "lifeevents_app"
SCRAM_ITERATIONS = 4096


def secrets_dir(data_dir: Path) -> Path:
    return data_dir / "postgres-secrets"


def role_password(data_dir: Path, role: str) -> str:
    """The role's password, generated once into `<data>/postgres-secrets/<role>` (mode 0600); never printed."""
    folder = secrets_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / role
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677), so `CREATE ROLE ... PASSWORD` never sends
    the password itself to the server (nor into its logs)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def bootstrap_sql(data_dir: Path, database: str) -> tuple[str, str]:
    """(SQL run in database `postgres`, SQL run in `database`), both as the superuser; idempotent, and it
    re-applies each role's attributes and password from the secrets folder."""
    roles = []
    for role, attributes in ((OWNER_ROLE, "NOCREATEDB"), (APP_ROLE, "NOCREATEDB NOBYPASSRLS NOREPLICATION")):
        verifier = scram_verifier(role_password(data_dir, role))
        roles.append(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role}; END IF; END $$;\n"
            f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEROLE NOINHERIT {attributes} PASSWORD '{verifier}';")
    server = "\n".join(roles)
    in_database = (
        f"ALTER DATABASE {database} OWNER TO {OWNER_ROLE};\n"
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;\n"
        f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {APP_ROLE};\n"
        f"ALTER SCHEMA public OWNER TO {OWNER_ROLE};\n"
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n"
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE};\n")
    return server, in_database


def first_unreachable(path: Path, uid: int, gids: set[int]) -> Path | None:
    """The first folder from `/` down to `path` (included) that user `uid` (groups `gids`) may not search, by
    the mode bits; None when it can reach `path`."""
    for folder in [*reversed(path.parents), path]:
        st = folder.stat()
        if st.st_uid == uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in gids:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None
