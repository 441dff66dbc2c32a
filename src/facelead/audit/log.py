"""Appending audit events. Placeholder until the hash-chained log lands (issue 4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def append_event(session: Session, **fields: Any) -> None:
    """Append one event in the caller's transaction (to be hash-chained)."""
    del session, fields
