"""notice dispatches: each notice pushed to its recipients' app once, by notification id

`notice_dispatches` holds one row per notification the dispatcher (events/notice_dispatch.py) has pushed, with
the stream sequence of the announcement it pushed and how many repeated announcements of it were seen since;
`inbox_messages.pushed_at` says when the app was told of each recipient's message. The application role gets its
rights from 0009's default privileges.

Revision ID: 0010
Revises: 0009
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_dispatches",
        sa.Column("notification_id", sa.Uuid(), sa.ForeignKey("notifications.id"), primary_key=True),
        sa.Column("stream_sequence", sa.BigInteger(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("repeats_seen", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.add_column("inbox_messages", sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("inbox_messages", "pushed_at")
    op.drop_table("notice_dispatches")
