# mypy: ignore-errors
"""Cases and searches: cases, probes, quality_overrides, searches, candidates, search_assignments.

Revision ID: 0004_cases
Revises: 0001_gallery
Create Date: 2025-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_cases"
down_revision = "0001_gallery"
branch_labels = ("cases",)
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user(prefix: str, nullable: bool = False) -> list[sa.Column]:
    return [
        sa.Column(f"{prefix}_username", sa.String(128), nullable=nullable),
        sa.Column(f"{prefix}_user_id", sa.Integer(), nullable=True),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}")


def _index(table: str, *columns: str, unique: bool = False) -> None:
    op.create_index(f"ix_{table}_{columns[0]}", table, list(columns), unique=unique)


def _cases_and_probes() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("agency", sa.String(128), nullable=False),
        sa.Column("offence_category", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *_user("opened_by"),
        _ts("opened_at"),
        *_user("closed_by", nullable=True),
        _ts("closed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("number", name="uq_cases_number"),
    )
    op.create_table(
        "probes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("source_type", sa.String(64), nullable=False),
        sa.Column("how_obtained", sa.Text(), nullable=False),
        sa.Column("captured_by", sa.String(256), nullable=False),
        sa.Column("edits", sa.JSON(), nullable=False),
        sa.Column("image_format", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_probes"),
    )
    _index("probes", "image_sha256")
    op.create_table(
        "quality_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("probe_sha256", sa.String(64), nullable=False),
        sa.Column("requester_username", sa.String(128), nullable=False),
        *_user("supervisor"),
        sa.Column("justification", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_quality_overrides"),
        _fk("quality_overrides", "case_id", "cases"),
    )
    _index("quality_overrides", "case_id")
    _index("quality_overrides", "probe_sha256")


def _searches() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("probe_id", sa.Integer(), nullable=False),
        *_user("requester"),
        sa.Column("requester_agency", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("face_index", sa.Integer(), nullable=False),
        sa.Column("faces_found", sa.Integer(), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("gallery_size", sa.Integer(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("quality_failures", sa.JSON(), nullable=False),
        sa.Column("quality_override_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        _ts("created_at"),
        _ts("status_changed_at"),
        sa.PrimaryKeyConstraint("id", name="pk_searches"),
        _fk("searches", "case_id", "cases"),
        _fk("searches", "probe_id", "probes"),
        _fk("searches", "quality_override_id", "quality_overrides"),
        sa.UniqueConstraint("probe_id", name="uq_searches_probe_id"),
        sa.UniqueConstraint("quality_override_id", name="uq_searches_quality_override_id"),
    )
    for column in ("case_id", "requester_username", "requester_user_id", "status", "created_at"):
        _index("searches", column)


def _candidates_and_assignments() -> None:
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_candidates"),
        _fk("candidates", "search_id", "searches"),
        _fk("candidates", "subject_id", "subjects"),
        _fk("candidates", "photo_id", "photos"),
        sa.UniqueConstraint("search_id", "rank", name="uq_candidates_search_id"),
    )
    for column in ("search_id", "subject_id", "photo_id"):
        _index("candidates", column)
    op.create_table(
        "search_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        *_user("examiner"),
        sa.Column("review_role", sa.String(16), nullable=False),
        *_user("assigned_by"),
        _ts("assigned_at"),
        sa.PrimaryKeyConstraint("id", name="pk_search_assignments"),
        _fk("search_assignments", "search_id", "searches"),
        sa.UniqueConstraint(
            "search_id", "examiner_username", name="uq_search_assignments_search_id"
        ),
    )
    _index("search_assignments", "search_id")
    _index("search_assignments", "examiner_username")


def upgrade() -> None:
    _cases_and_probes()
    _searches()
    _candidates_and_assignments()


def downgrade() -> None:
    for table in (
        "search_assignments",
        "candidates",
        "searches",
        "quality_overrides",
        "probes",
        "cases",
    ):
        op.drop_table(table)
