"""keys for many offices, parent matching

- received_events keyed by CloudEvent (source, id); rows from before get the source 'unknown' (the envelope was
  not kept, so the source cannot be recovered); registration_number nullable (not every event is a birth).
- birth_registrations unique by (province_code, registration_number); the workflow id is stored (existing rows
  keep the `birth-<number>` their workflows run under); the event source; what record_birth found per parent.
- identity_numbers.registration_number no longer unique (the same number may be issued in two provinces).

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.add_column('received_events', sa.Column('event_source', sa.String(length=200), nullable=True))
    op.execute("UPDATE received_events SET event_source = 'unknown'")
    op.alter_column('received_events', 'event_source', nullable=False)
    op.drop_constraint('pk_received_events', 'received_events', type_='primary')
    op.create_primary_key('pk_received_events', 'received_events', ['event_source', 'event_id'])
    op.alter_column('received_events', 'registration_number', existing_type=sa.String(length=20), nullable=True)

    op.add_column('birth_registrations', sa.Column('event_source', sa.String(length=200), nullable=True))
    op.add_column('birth_registrations', sa.Column('workflow_id', sa.String(length=200), nullable=True))
    op.add_column('birth_registrations', sa.Column('parent_match', JSON_TYPE, nullable=True))
    op.execute("UPDATE birth_registrations SET workflow_id = 'birth-' || registration_number")
    op.alter_column('birth_registrations', 'workflow_id', nullable=False)
    op.create_unique_constraint(op.f('uq_birth_registrations_workflow_id'), 'birth_registrations', ['workflow_id'])
    op.drop_constraint('uq_birth_registrations_registration_number', 'birth_registrations', type_='unique')
    op.create_unique_constraint('uq_birth_registrations_province_number', 'birth_registrations',
                                ['province_code', 'registration_number'])
    op.create_index(op.f('ix_birth_registrations_registration_number'), 'birth_registrations',
                    ['registration_number'])

    op.drop_constraint('uq_identity_numbers_registration_number', 'identity_numbers', type_='unique')
    op.create_index(op.f('ix_identity_numbers_registration_number'), 'identity_numbers', ['registration_number'])


def downgrade() -> None:
    op.drop_index(op.f('ix_identity_numbers_registration_number'), table_name='identity_numbers')
    op.create_unique_constraint('uq_identity_numbers_registration_number', 'identity_numbers',
                                ['registration_number'])

    op.drop_index(op.f('ix_birth_registrations_registration_number'), table_name='birth_registrations')
    op.drop_constraint('uq_birth_registrations_province_number', 'birth_registrations', type_='unique')
    op.create_unique_constraint('uq_birth_registrations_registration_number', 'birth_registrations',
                                ['registration_number'])
    op.drop_constraint(op.f('uq_birth_registrations_workflow_id'), 'birth_registrations', type_='unique')
    op.drop_column('birth_registrations', 'parent_match')
    op.drop_column('birth_registrations', 'workflow_id')
    op.drop_column('birth_registrations', 'event_source')

    op.execute("DELETE FROM received_events WHERE registration_number IS NULL")
    op.alter_column('received_events', 'registration_number', existing_type=sa.String(length=20), nullable=False)
    op.drop_constraint('pk_received_events', 'received_events', type_='primary')
    op.execute("DELETE FROM received_events a USING received_events b WHERE a.event_id = b.event_id "
               "AND a.event_source > b.event_source")
    op.create_primary_key('pk_received_events', 'received_events', ['event_id'])
    op.drop_column('received_events', 'event_source')
