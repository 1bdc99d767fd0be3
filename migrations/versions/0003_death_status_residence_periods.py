"""death: person status, residence periods, death registrations, funeral allowances, closed cards

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('persons', sa.Column('status', sa.String(length=10), server_default='alive', nullable=False))
    op.add_column('persons', sa.Column('date_of_death', sa.Date(), nullable=True))
    op.add_column('health_insurance_cards', sa.Column('closed_on', sa.Date(), nullable=True))
    op.add_column('health_insurance_cards', sa.Column('closed_reason', sa.String(length=40), nullable=True))

    op.create_table('residence_periods',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('started_by', sa.String(length=20), nullable=False),
    sa.Column('ended_by', sa.String(length=20), nullable=True),
    sa.Column('workflow_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_residence_periods_household_id_households')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_residence_periods_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_residence_periods'))
    )
    op.create_index(op.f('ix_residence_periods_person_id'), 'residence_periods', ['person_id'])
    # what was registered before the history existed: one open period per person with a household
    op.execute("INSERT INTO residence_periods (id, person_id, household_id, valid_from, started_by, workflow_id) "
               "SELECT gen_random_uuid(), r.person_id, r.household_id, (r.registered_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, "
               "'birth', r.workflow_id FROM residence_registrations r")
    op.execute("INSERT INTO residence_periods (id, person_id, household_id, valid_from, started_by) "
               "SELECT gen_random_uuid(), p.id, p.household_id, p.date_of_birth, 'backfill' FROM persons p "
               "WHERE p.household_id IS NOT NULL AND NOT EXISTS "
               "(SELECT 1 FROM residence_registrations r WHERE r.person_id = p.id)")

    op.create_table('death_registrations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('registration_number', sa.String(length=20), nullable=False),
    sa.Column('province_code', sa.String(length=3), nullable=False),
    sa.Column('event_source', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('date_of_death', sa.Date(), nullable=False),
    sa.Column('declarant_person_id', sa.Uuid(), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(sa.dialects.postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['declarant_person_id'], ['persons.id'], name=op.f('fk_death_registrations_declarant_person_id_persons')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_death_registrations_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_death_registrations')),
    sa.UniqueConstraint('person_id', name=op.f('uq_death_registrations_person_id')),
    sa.UniqueConstraint('province_code', 'registration_number', name='uq_death_registrations_province_number')
    )
    op.create_table('funeral_allowances',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('deceased_person_id', sa.Uuid(), nullable=False),
    sa.Column('declarant_person_id', sa.Uuid(), nullable=True),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['deceased_person_id'], ['persons.id'], name=op.f('fk_funeral_allowances_deceased_person_id_persons')),
    sa.ForeignKeyConstraint(['declarant_person_id'], ['persons.id'], name=op.f('fk_funeral_allowances_declarant_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funeral_allowances')),
    sa.UniqueConstraint('deceased_person_id', name=op.f('uq_funeral_allowances_deceased_person_id'))
    )


def downgrade() -> None:
    op.drop_table('funeral_allowances')
    op.drop_table('death_registrations')
    op.drop_table('residence_periods')
    op.drop_column('health_insurance_cards', 'closed_reason')
    op.drop_column('health_insurance_cards', 'closed_on')
    op.drop_column('persons', 'date_of_death')
    op.drop_column('persons', 'status')
