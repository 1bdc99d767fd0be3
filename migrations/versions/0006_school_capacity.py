"""school capacity: schools and grade-1 places, plan runs and cells, department notices

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('schools',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('province_code', sa.String(length=3), nullable=False),
    sa.Column('ward_code', sa.String(length=10), nullable=False),
    sa.Column('grade1_places', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schools')),
    sa.UniqueConstraint('code', name=op.f('uq_schools_code'))
    )
    op.create_index(op.f('ix_schools_province_code'), 'schools', ['province_code'])
    op.create_index(op.f('ix_schools_ward_code'), 'schools', ['ward_code'])
    op.create_table('school_plan_runs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('province_code', sa.String(length=3), nullable=True),
    sa.Column('first_entry_year', sa.Integer(), nullable=False),
    sa.Column('years', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report_dir', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_school_plan_runs')),
    sa.UniqueConstraint('workflow_id', name=op.f('uq_school_plan_runs_workflow_id'))
    )
    op.create_table('school_plan_cells',
    sa.Column('run_id', sa.Uuid(), nullable=False),
    sa.Column('province_code', sa.String(length=3), nullable=False),
    sa.Column('ward_code', sa.String(length=10), nullable=False),
    sa.Column('entry_year', sa.Integer(), nullable=False),
    sa.Column('demand', sa.Integer(), nullable=False),
    sa.Column('places', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['school_plan_runs.id'], name=op.f('fk_school_plan_cells_run_id_school_plan_runs')),
    sa.PrimaryKeyConstraint('run_id', 'province_code', 'ward_code', 'entry_year', name=op.f('pk_school_plan_cells'))
    )
    op.create_table('department_notices',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=250), nullable=False),
    sa.Column('department', sa.String(length=40), nullable=False),
    sa.Column('province_code', sa.String(length=3), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('plan_run_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['plan_run_id'], ['school_plan_runs.id'], name=op.f('fk_department_notices_plan_run_id_school_plan_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_department_notices')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_department_notices_dedupe_key'))
    )
    op.create_index(op.f('ix_department_notices_province_code'), 'department_notices', ['province_code'])


def downgrade() -> None:
    op.drop_table('department_notices')
    op.drop_table('school_plan_cells')
    op.drop_table('school_plan_runs')
    op.drop_table('schools')
