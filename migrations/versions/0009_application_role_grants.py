"""application role grants: rows only, and on the ledger only reading and appending

The service connects as its own role (the `app_role` option of the Alembic config, by default the user of
`DATABASE_URL`); the role running the migrations owns the tables. This revision grants the application role
SELECT/INSERT/UPDATE/DELETE on the registry tables, only SELECT and INSERT on the ledger (`data_access_log`),
only SELECT on `alembic_version`, and the sequences; default privileges give it the same on tables later
revisions create. Nothing is granted when no application role is named, when it does not exist on this server
(a notice says so; grant by hand there) or when it is the migrating role itself.

Revision ID: 0009
Revises: 0008
"""
import logging
from collections.abc import Sequence

from alembic import context, op
from sqlalchemy import text

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ('data_access_log',)
READ_ONLY = ('alembic_version',)
log = logging.getLogger("alembic.runtime.migration")


def _app_role() -> str | None:
    """The application role's quoted name when grants apply on this server, else None."""
    role = context.config.get_main_option("app_role")
    if not role:
        return None
    bind = op.get_bind()
    exists, is_self = bind.execute(text("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :r), "
                                        ":r = current_user"), {"r": role}).one()
    if not exists or is_self:
        log.warning("application role %s %s: no grants made", role,
                    "is the migrating role" if exists else "does not exist on this server")
        return None
    return str(bind.dialect.identifier_preparer.quote(role))


def upgrade() -> None:
    role = _app_role()
    if role is None:
        return
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    for table in APPEND_ONLY:
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {table} FROM {role}")
    for table in READ_ONLY:
        op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {table} FROM {role}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}")


def downgrade() -> None:
    role = _app_role()
    if role is None:
        return
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {role}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
