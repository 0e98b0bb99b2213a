"""bulk imports of leads from CSV files: the import and its rows, by line

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-26 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_imports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lead_imports_created_at", "lead_imports", ["created_at"])
    op.create_table(
        "import_rows",
        sa.Column("import_id", sa.String(length=32), nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=True),
        sa.Column("submission", sa.JSON(), nullable=True),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["import_id"], ["lead_imports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("import_id", "line"),
    )
    op.create_index("ix_import_rows_status_line", "import_rows", ["import_id", "status", "line"])


def downgrade() -> None:
    op.drop_index("ix_import_rows_status_line", table_name="import_rows")
    op.drop_table("import_rows")
    op.drop_index("ix_lead_imports_created_at", table_name="lead_imports")
    op.drop_table("lead_imports")
