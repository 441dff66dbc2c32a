"""Consistent copies of the database: SQLite's backup API, PostgreSQL's own tools.

A backup is only as good as the agreement between the copied database and
the image files copied next to it, so every copy comes with its ``BackupFacts``
(the image hashes that copy refers to), read from the very same state:
from the copied SQLite file, or, for PostgreSQL, inside the transaction whose
snapshot ``pg_dump --snapshot`` dumps.

``pg_dump`` and ``pg_restore`` are the server's own tools, found on PATH (or
/usr/bin) and run as subprocesses. Connection parameters travel in the
environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD), never on the
command line, where ``ps`` and shell histories would show a password.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from facelead.errors import ConfigurationError, ConflictError

SQLITE, POSTGRESQL = "sqlite", "postgresql"
FALLBACK_BIN = "/usr/bin"
_STDERR_SHOWN = 600


def database_kind(url: str) -> str:
    """``sqlite`` (a file) or ``postgresql``; anything else cannot be backed up here."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == POSTGRESQL:
        return POSTGRESQL
    if sqlite_file(url) is not None:
        return SQLITE
    where = " in memory" if backend == SQLITE else ""
    raise ConfigurationError(
        f"cannot back up or restore a {backend} database{where}",
        code="backup_unsupported_database",
    )


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another backend or memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != SQLITE or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().resolve()


def sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy while others keep writing."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, stable bytes
        check = dst.execute("PRAGMA integrity_check").fetchone()
        if not check or check[0] != "ok":
            raise RuntimeError(f"backup copy failed its integrity check: {check}")
    finally:
        dst.close()
        src.close()


@dataclass(frozen=True)
class BackupFacts:
    """What a copied database refers to: the files that must travel with it."""

    photo_hashes: list[str]  # live photos (stubs of removed records have no file)
    probe_hashes: list[str]  # probes some search still holds (not released by retention)
    audit_seq: int


_FACT_QUERIES = {
    "photos": "SELECT image_sha256 FROM photos WHERE width > 0 ORDER BY 1",  # stubs are 0x0
    "probes": "SELECT DISTINCT pr.image_sha256 FROM searches se "
    "JOIN probes pr ON pr.id = se.probe_id "
    "LEFT JOIN retention_actions ra ON ra.search_id = se.id WHERE ra.id IS NULL ORDER BY 1",
    "audit": "SELECT seq FROM audit_head",
}


def backup_facts(db_file: Path) -> BackupFacts:
    """Read-only, by SQLite itself: opening the copy through the engine would alter its bytes."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        photos = [str(r[0]) for r in conn.execute(_FACT_QUERIES["photos"])]
        probes = [str(r[0]) for r in conn.execute(_FACT_QUERIES["probes"])]
        head = conn.execute(_FACT_QUERIES["audit"]).fetchone()
    finally:
        conn.close()
    return BackupFacts(photos, probes, int(head[0]) if head else 0)


def facts_of(conn: Connection) -> BackupFacts:
    """The same facts through an open connection (a PostgreSQL snapshot, a restored database)."""
    photos = [str(v) for v in conn.scalars(sa.text(_FACT_QUERIES["photos"]))]
    probes = [str(v) for v in conn.scalars(sa.text(_FACT_QUERIES["probes"]))]
    head = conn.scalar(sa.text(_FACT_QUERIES["audit"]))
    return BackupFacts(photos, probes, int(head or 0))


def has_tables(engine: Engine) -> bool:
    """Whether a database already holds tables (restore writes only into an empty one)."""
    return bool(sa.inspect(engine).get_table_names())


# --------------------------------------------------------------------------- PostgreSQL


def pg_tool(name: str) -> str:
    """The absolute path of ``pg_dump`` or ``pg_restore``, or a ConfigurationError saying so."""
    found = shutil.which(name) or shutil.which(name, path=FALLBACK_BIN)
    if found is None:
        raise ConfigurationError(
            f"{name} not found on PATH or in {FALLBACK_BIN}: install the PostgreSQL client tools "
            "of the server's major version",
            code="pg_tools_missing",
            tool=name,
        )
    return found


_QUERY_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "passfile": "PGPASSFILE",
}


def pg_environment(url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a libpq tool needs to reach the database of ``url``.

    Starts from ``base`` (the process environment: a PGPASSFILE or PGSSLMODE
    set there reaches the tools as it reaches the application's own driver)
    and sets whatever the URL says.
    """
    parsed = make_url(url)
    env = dict(os.environ if base is None else base)
    for key, value in parsed.query.items():
        if key in _QUERY_ENV:
            env[_QUERY_ENV[key]] = value if isinstance(value, str) else value[-1]
    fields = {
        "PGHOST": parsed.host,
        "PGPORT": str(parsed.port) if parsed.port else None,
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
    }
    env.update({k: str(v) for k, v in fields.items() if v})
    return env


def pg_command(tool: str, *args: str) -> list[str]:
    """The argv of a PostgreSQL tool: options only, never a connection parameter.

    ``--dbname=`` (empty) makes pg_restore connect, to the database PGDATABASE
    names; ``--no-password`` makes a missing password fail instead of prompting.
    """
    return [pg_tool(tool), "--no-password", *args]


def _run(argv: list[str], url: str, what: str) -> str:
    result = subprocess.run(
        argv, env=pg_environment(url), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = result.stderr.strip()[-_STDERR_SHOWN:]
        raise ConflictError(
            f"{what} failed (exit {result.returncode}): {tail.splitlines()[-1] if tail else ''}",
            code=f"{what.replace(' ', '_')}_failed",
            stderr=tail,
        )
    return result.stdout


@contextmanager
def pg_snapshot(engine: Engine) -> Iterator[tuple[str, BackupFacts]]:
    """Hold a repeatable-read transaction open and export its snapshot.

    ``pg_dump --snapshot`` dumps exactly the state these facts were read from,
    so the image files copied from the facts match the dumped rows.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            snapshot = str(conn.scalar(sa.text("SELECT pg_export_snapshot()")))
            yield snapshot, facts_of(conn)


def pg_dump(url: str, target: Path, snapshot: str | None = None) -> None:
    """``pg_dump --format=custom`` of the whole database into ``target``."""
    args = ["--format=custom", f"--file={target}"]
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    _run(pg_command("pg_dump", *args), url, "pg_dump")


def pg_restore(url: str, dump: Path) -> None:
    """Replace the database's objects with the dump's, all or nothing.

    ``--clean --if-exists`` drops what the dump is about to create;
    ``--single-transaction`` makes a failure leave the database as it was;
    ``--no-owner --no-privileges`` lets another role restore onto another server.
    """
    args = ["--dbname=", "--clean", "--if-exists", "--single-transaction", "--exit-on-error"]
    args += ["--no-owner", "--no-privileges", str(dump)]
    _run(pg_command("pg_restore", *args), url, "pg_restore")


def pg_archive_problems(dump: Path) -> list[str]:
    """Reading the archive's table of contents proves it is a whole custom-format dump."""
    result = subprocess.run(
        [pg_tool("pg_restore"), "--list", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return [f"{dump.name} is not a readable pg_dump archive: {result.stderr.strip()[-200:]}"]
    if "TABLE DATA" not in result.stdout:
        return [f"{dump.name} holds no table data"]
    return []
