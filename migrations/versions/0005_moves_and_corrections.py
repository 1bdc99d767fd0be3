"""moves and corrections: residence changes, birth corrections, re-issued ID numbers

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # identity numbers: one *active* number per person; a cancelled number stays (never allocated again)
    op.add_column('identity_numbers', sa.Column('status', sa.String(length=10), server_default='active',
                                                nullable=False))
    op.add_column('identity_numbers', sa.Column('replaced_by', sa.String(length=12), nullable=True))
    op.add_column('identity_numbers', sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('identity_numbers', sa.Column('cancelled_by', sa.String(length=200), nullable=True))
    op.create_foreign_key(op.f('fk_identity_numbers_replaced_by_identity_numbers'), 'identity_numbers',
                          'identity_numbers', ['replaced_by'], ['number'])
    op.execute('ALTER TABLE identity_numbers DROP CONSTRAINT IF EXISTS uq_identity_numbers_person_id')
    op.create_index('uq_identity_numbers_active_person', 'identity_numbers', ['person_id'], unique=True,
                    postgresql_where=sa.text("status = 'active'"))

    op.create_table('residence_changes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('event_source', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=False),
    sa.Column('moved_on', sa.Date(), nullable=False),
    sa.Column('office_code', sa.String(length=32), nullable=False),
    sa.Column('province_code', sa.String(length=3), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_residence_changes_household_id_households')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_residence_changes_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_residence_changes')),
    sa.UniqueConstraint('event_source', 'event_id', name='uq_residence_changes_event'),
    sa.UniqueConstraint('person_id', 'household_id', 'moved_on', name='uq_residence_changes_move')
    )
    op.create_index(op.f('ix_residence_changes_person_id'), 'residence_changes', ['person_id'])

    op.create_table('birth_corrections',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('event_source', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('registration_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('office_code', sa.String(length=32), nullable=False),
    sa.Column('corrected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested', JSON, nullable=False),
    sa.Column('before', JSON, nullable=True),
    sa.Column('after', JSON, nullable=True),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_birth_corrections_person_id_persons')),
    sa.ForeignKeyConstraint(['registration_id'], ['birth_registrations.id'],
                            name=op.f('fk_birth_corrections_registration_id_birth_registrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_birth_corrections')),
    sa.UniqueConstraint('event_source', 'event_id', name='uq_birth_corrections_event')
    )
    op.create_index(op.f('ix_birth_corrections_person_id'), 'birth_corrections', ['person_id'])
    op.create_index(op.f('ix_birth_corrections_registration_id'), 'birth_corrections', ['registration_id'])


def downgrade() -> None:
    op.drop_table('birth_corrections')
    op.drop_table('residence_changes')
    op.execute("DELETE FROM identity_numbers WHERE status <> 'active'")
    op.drop_index('uq_identity_numbers_active_person', table_name='identity_numbers')
    op.create_unique_constraint(op.f('uq_identity_numbers_person_id'), 'identity_numbers', ['person_id'])
    op.drop_constraint(op.f('fk_identity_numbers_replaced_by_identity_numbers'), 'identity_numbers',
                       type_='foreignkey')
    op.drop_column('identity_numbers', 'cancelled_by')
    op.drop_column('identity_numbers', 'cancelled_at')
    op.drop_column('identity_numbers', 'replaced_by')
    op.drop_column('identity_numbers', 'status')
