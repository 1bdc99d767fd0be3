"""school plan indexes: living persons by date of birth (with their household), households by address

Revision ID: 0007
Revises: 0006
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_persons_alive_date_of_birth', 'persons', ['date_of_birth'],
                    postgresql_include=['household_id'], postgresql_where=sa.text("status = 'alive'"))
    op.create_index(op.f('ix_households_address_id'), 'households', ['address_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_households_address_id'), table_name='households')
    op.drop_index('ix_persons_alive_date_of_birth', table_name='persons')
