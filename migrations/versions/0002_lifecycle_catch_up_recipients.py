"""lifecycle: catch-up plan columns, dose reports, health-station tasks, one inbox message per recipient

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('planned_vaccinations', sa.Column('nominal_due_date', sa.Date(), nullable=True))
    op.add_column('planned_vaccinations', sa.Column('overdue_at_planning', sa.Boolean(),
                                                    server_default='false', nullable=False))
    op.add_column('planned_vaccinations', sa.Column('flag', sa.String(length=40), nullable=True))
    op.add_column('planned_vaccinations', sa.Column('administered_on', sa.Date(), nullable=True))
    op.execute("UPDATE planned_vaccinations SET nominal_due_date = due_date WHERE nominal_due_date IS NULL")

    op.add_column('inbox_messages', sa.Column('recipient_person_id', sa.Uuid(), nullable=True))
    op.add_column('inbox_messages', sa.Column('recipient_role', sa.String(length=12), server_default='mother',
                                              nullable=False))
    op.add_column('inbox_messages', sa.Column('channel', sa.String(length=10), server_default='app',
                                              nullable=False))
    op.execute("UPDATE inbox_messages m SET recipient_person_id = n.recipient_person_id "
               "FROM notifications n WHERE n.id = m.notification_id")
    op.drop_constraint('uq_inbox_messages_notification_id', 'inbox_messages', type_='unique')
    op.create_index(op.f('ix_inbox_messages_notification_id'), 'inbox_messages', ['notification_id'])
    op.create_index(op.f('ix_inbox_messages_recipient_person_id'), 'inbox_messages', ['recipient_person_id'])
    op.create_foreign_key(op.f('fk_inbox_messages_recipient_person_id_persons'), 'inbox_messages', 'persons',
                          ['recipient_person_id'], ['id'])
    op.create_unique_constraint('uq_inbox_messages_notification_recipient', 'inbox_messages',
                                ['notification_id', 'recipient_person_id'])

    op.create_table('vaccination_reports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('event_source', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('vaccine', sa.String(length=20), nullable=False),
    sa.Column('dose', sa.Integer(), nullable=False),
    sa.Column('administered_on', sa.Date(), nullable=False),
    sa.Column('health_station_code', sa.String(length=32), nullable=False),
    sa.Column('province_code', sa.String(length=3), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_vaccination_reports_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vaccination_reports')),
    sa.UniqueConstraint('event_source', 'event_id', name='uq_vaccination_reports_event')
    )
    op.create_index(op.f('ix_vaccination_reports_person_id'), 'vaccination_reports', ['person_id'])

    op.create_table('health_station_tasks',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=250), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('province_code', sa.String(length=3), nullable=True),
    sa.Column('ward_code', sa.String(length=10), nullable=True),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('vaccine', sa.String(length=20), nullable=False),
    sa.Column('dose', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_health_station_tasks_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_station_tasks')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_health_station_tasks_dedupe_key'))
    )
    op.create_index(op.f('ix_health_station_tasks_person_id'), 'health_station_tasks', ['person_id'])
    op.create_index(op.f('ix_health_station_tasks_ward_code'), 'health_station_tasks', ['ward_code'])


def downgrade() -> None:
    op.drop_table('health_station_tasks')
    op.drop_table('vaccination_reports')
    op.drop_constraint('uq_inbox_messages_notification_recipient', 'inbox_messages', type_='unique')
    op.drop_constraint(op.f('fk_inbox_messages_recipient_person_id_persons'), 'inbox_messages', type_='foreignkey')
    op.drop_index(op.f('ix_inbox_messages_recipient_person_id'), 'inbox_messages')
    op.drop_index(op.f('ix_inbox_messages_notification_id'), 'inbox_messages')
    op.create_unique_constraint('uq_inbox_messages_notification_id', 'inbox_messages', ['notification_id'])
    op.drop_column('inbox_messages', 'channel')
    op.drop_column('inbox_messages', 'recipient_role')
    op.drop_column('inbox_messages', 'recipient_person_id')
    for column in ('administered_on', 'flag', 'overdue_at_planning', 'nominal_due_date'):
        op.drop_column('planned_vaccinations', column)
