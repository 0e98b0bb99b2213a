"""the territory of leads routed before it was kept, from their routing facts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 01:40:00.000000
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.orm import Session

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from store.territory_backfill import backfill_territories

    session = Session(bind=op.get_bind())
    backfill_territories(session)
    session.flush()


def downgrade() -> None:
    pass  # the territories stay: they are what the assignment would have stored
