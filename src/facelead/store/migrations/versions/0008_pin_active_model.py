# mypy: ignore-errors
"""Pin the gallery's model: a gallery with templates but no ``active_model`` setting gets
the model most of its templates belong to.

Until this revision the model in use was the configured default whenever no
re-templating had switched it. A release that changes the default (fusion-v3 to
fusion-v4) would then have searched an index with no templates. From now on the
first enrolment pins the model, and this revision pins it for existing galleries.

Revision ID: 0008_pin_active_model
Revises: 0007_booking_tombstones
Create Date: 2026-11-29
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0008_pin_active_model"
down_revision = "0007_booking_tombstones"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM gallery_settings WHERE key = 'active_model'")).first():
        return
    row = bind.execute(
        sa.text(
            "SELECT model_id FROM templates GROUP BY model_id "
            "ORDER BY COUNT(*) DESC, model_id LIMIT 1"
        )
    ).first()
    if row is None:
        return
    bind.execute(
        sa.text(
            "INSERT INTO gallery_settings (key, value, updated_by_username, updated_at) "
            "VALUES ('active_model', :model, 'migration-0008', :now)"
        ),
        {"model": row[0], "now": dt.datetime.now(dt.UTC)},
    )


def downgrade() -> None:
    op.execute(
        "DELETE FROM gallery_settings WHERE key = 'active_model' "
        "AND updated_by_username = 'migration-0008'"
    )
