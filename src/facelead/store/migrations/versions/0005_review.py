# mypy: ignore-errors
"""Review: reviews, review_dispositions, review_resolutions, lead_reports, corroborations,
search_outcomes.

Revision ID: 0005_review
Revises: 0004_cases
Create Date: 2025-01-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_review"
down_revision = "0004_cases"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user(prefix: str) -> list[sa.Column]:
    return [
        sa.Column(f"{prefix}_username", sa.String(128), nullable=False),
        sa.Column(f"{prefix}_user_id", sa.Integer(), nullable=True),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}")


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def _index(table: str, column: str, unique: bool = False) -> None:
    op.create_index(f"ix_{table}_{column}", table, [column], unique=unique)


def _reviews() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("review_role", sa.String(16), nullable=False),
        *_user("examiner"),
        sa.Column("blind", sa.Boolean(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=True),
        sa.Column("features_note", sa.Text(), nullable=True),
        _ts("features_at", nullable=True),
        sa.Column("conclusion", sa.String(32), nullable=True),
        _ts("completed_at", nullable=True),
        _ts("created_at"),
        _pk("reviews"),
        _fk("reviews", "search_id", "searches"),
        _fk("reviews", "assignment_id", "search_assignments"),
        sa.UniqueConstraint("assignment_id", "round", name="uq_reviews_assignment_id"),
    )
    for column in ("search_id", "assignment_id", "examiner_username"):
        _index("reviews", column)
    op.create_table(
        "review_dispositions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        _ts("recorded_at"),
        _pk("review_dispositions"),
        _fk("review_dispositions", "review_id", "reviews"),
        _fk("review_dispositions", "candidate_id", "candidates"),
        sa.UniqueConstraint("review_id", "candidate_id", name="uq_review_dispositions_review_id"),
    )
    _index("review_dispositions", "review_id")
    _index("review_dispositions", "candidate_id")
    op.create_table(
        "review_resolutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        *_user("supervisor"),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        _ts("created_at"),
        _pk("review_resolutions"),
        _fk("review_resolutions", "search_id", "searches"),
    )
    _index("review_resolutions", "search_id")


def _reports_and_outcomes() -> None:
    op.create_table(
        "lead_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("issued_to_username", sa.String(128), nullable=False),
        *_user("issued_by"),
        sa.Column("html_sha256", sa.String(64), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        _ts("created_at"),
        _pk("lead_reports"),
        _fk("lead_reports", "search_id", "searches"),
    )
    _index("lead_reports", "search_id")
    op.create_table(
        "corroborations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("supports", sa.Boolean(), nullable=False),
        *_user("recorded_by"),
        _ts("recorded_at"),
        _pk("corroborations"),
        _fk("corroborations", "search_id", "searches"),
    )
    _index("corroborations", "search_id")
    op.create_table(
        "search_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_before", sa.String(32), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        *_user("recorded_by"),
        _ts("recorded_at"),
        _pk("search_outcomes"),
        _fk("search_outcomes", "search_id", "searches"),
        sa.UniqueConstraint("search_id", name="uq_search_outcomes_search_id"),
    )


def upgrade() -> None:
    _reviews()
    _reports_and_outcomes()


def downgrade() -> None:
    for table in (
        "search_outcomes",
        "corroborations",
        "lead_reports",
        "review_resolutions",
        "review_dispositions",
        "reviews",
    ):
        op.drop_table(table)
