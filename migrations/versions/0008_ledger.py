"""tamper-evident data-access ledger: fields read, one entry per step, a SHA-256 hash chain

Every `data_access_log` row gets `seq`, `prev_hash` and `hash`, set by a BEFORE INSERT trigger under a
transaction-scoped advisory lock (ledger writers are serialised until their transaction ends), so concurrent
transactions chain correctly. Existing rows are chained in id order. A step's entry is unique per
(workflow, reader, purpose, citizen) when it has a workflow id (a retried activity adds none).

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The canonical form of an entry (cli/ledger.py recomputes it in Python): the fields joined by U+001F, NULL as
# the empty string, the time in UTC with microseconds. hash = sha256(prev_hash || canonical), lower-case hex.
CANONICAL = """concat_ws(chr(31), r_seq::text, coalesce(r_citizen::text, ''), r_agency, coalesce(r_fields, ''),
        r_purpose, coalesce(r_workflow_id, ''),
        to_char(r_accessed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))"""

LEDGER_LOCK = 804_2026_0008  # pg_advisory_xact_lock key shared by every ledger writer

HASH_FUNCTION = f"""
CREATE FUNCTION data_access_entry_hash(r_prev text, r_seq bigint, r_citizen uuid, r_agency text, r_fields text,
                                       r_purpose text, r_workflow_id text, r_accessed_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(r_prev || {CANONICAL}, 'UTF8')), 'hex')
$$;
"""

TRIGGER_FUNCTION = f"""
CREATE FUNCTION data_access_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock({LEDGER_LOCK});
    SELECT seq, hash INTO last_seq, last_hash FROM data_access_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.accessed_at := coalesce(NEW.accessed_at, now());
    NEW.hash := data_access_entry_hash(NEW.prev_hash, NEW.seq, NEW.citizen_person_id, NEW.agency, NEW.fields,
                                       NEW.purpose, NEW.workflow_id, NEW.accessed_at);
    RETURN NEW;
END
$$;
"""

BACKFILL = """
DO $$
DECLARE
    r record;
    n bigint := 0;
    h text := repeat('0', 64);
    nh text;
BEGIN
    FOR r IN SELECT * FROM data_access_log ORDER BY id LOOP
        n := n + 1;
        nh := data_access_entry_hash(h, n, r.citizen_person_id, r.agency, r.fields, r.purpose, r.workflow_id,
                                     r.accessed_at);
        UPDATE data_access_log SET seq = n, prev_hash = h, hash = nh WHERE id = r.id;
        h := nh;
    END LOOP;
END
$$;
"""


def upgrade() -> None:
    op.add_column('data_access_log', sa.Column('fields', sa.String(length=500), nullable=True))
    op.add_column('data_access_log', sa.Column('seq', sa.BigInteger(), nullable=True))
    op.add_column('data_access_log', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('data_access_log', sa.Column('hash', sa.String(length=64), nullable=True))
    op.alter_column('data_access_log', 'citizen_person_id', existing_type=sa.Uuid(), nullable=True)
    op.execute(HASH_FUNCTION)
    # rows written before this revision by a retried step: keep the first of each step (the key below)
    op.execute("DELETE FROM data_access_log a USING data_access_log b WHERE a.workflow_id IS NOT NULL "
               "AND a.workflow_id = b.workflow_id AND a.agency = b.agency AND a.purpose = b.purpose "
               "AND a.citizen_person_id IS NOT DISTINCT FROM b.citizen_person_id AND a.id > b.id")
    op.execute(BACKFILL)
    for column in ('seq', 'prev_hash', 'hash'):
        op.alter_column('data_access_log', column, nullable=False)
    op.create_index('ix_data_access_log_seq', 'data_access_log', ['seq'], unique=True)
    op.create_index(op.f('ix_data_access_log_accessed_at'), 'data_access_log', ['accessed_at'])
    op.create_index('uq_data_access_log_step', 'data_access_log',
                    ['workflow_id', 'agency', 'purpose', 'citizen_person_id'], unique=True,
                    postgresql_where=sa.text('workflow_id IS NOT NULL'))
    op.execute(TRIGGER_FUNCTION)
    op.execute("CREATE TRIGGER data_access_chain BEFORE INSERT ON data_access_log "
               "FOR EACH ROW EXECUTE FUNCTION data_access_chain()")


def downgrade() -> None:
    op.execute("DROP TRIGGER data_access_chain ON data_access_log")
    op.execute("DROP FUNCTION data_access_chain()")
    op.drop_index('uq_data_access_log_step', table_name='data_access_log')
    op.drop_index(op.f('ix_data_access_log_accessed_at'), table_name='data_access_log')
    op.drop_index('ix_data_access_log_seq', table_name='data_access_log')
    op.execute("DROP FUNCTION data_access_entry_hash(text, bigint, uuid, text, text, text, text, timestamptz)")
    op.execute("DELETE FROM data_access_log WHERE citizen_person_id IS NULL")
    op.alter_column('data_access_log', 'citizen_person_id', existing_type=sa.Uuid(), nullable=False)
    for column in ('hash', 'prev_hash', 'seq', 'fields'):
        op.drop_column('data_access_log', column)
