"""Engine, transactions and schema upgrades.

Services run one use case per ``Database.session()``: either everything the
use case wrote is committed (audit event included) or nothing is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite leaves foreign keys off and uses rollback journals unless told otherwise."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


class Database:
    """One database, SQLite or PostgreSQL, chosen by URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, future=True, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Commit on success, roll back on any exception, always close."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def alembic_config(self) -> Config:
        """Built in code so a wheel install needs no alembic.ini on disk."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self, revision: str = "heads") -> None:
        """Bring the schema to ``revision`` (all heads by default) in one transaction."""
        cfg = self.alembic_config()
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

    def current_heads(self) -> tuple[str, ...]:
        """The schema revisions recorded in the database; empty before any upgrade."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))

    def script_heads(self) -> tuple[str, ...]:
        """The newest revisions the code knows; equal to ``current_heads`` once upgraded."""
        from alembic.script import ScriptDirectory

        return tuple(sorted(ScriptDirectory.from_config(self.alembic_config()).get_heads()))

    def dispose(self) -> None:
        self.engine.dispose()
