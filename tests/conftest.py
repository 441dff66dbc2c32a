"""Shared pytest fixtures; each layer owns one delimited block."""

# --- store fixtures ---
# Real databases, no mocks: every store test runs on SQLite and on PostgreSQL.
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from facelead.store import Database, ImageStore

PG_ADMIN_URL = os.environ.get(
    "FACELEAD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[sa.Engine]:
    """One AUTOCOMMIT connection pool for CREATE/DROP DATABASE; skips if no server."""
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver or network failure means "not reachable"
        engine.dispose()
        message = f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()


@contextmanager
def fresh_pg_database(admin: sa.Engine) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"facelead_test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_admin_engine: sa.Engine) -> Iterator[str]:
    """A fresh PostgreSQL database only (tests of several processes on one server)."""
    with fresh_pg_database(pg_admin_engine) as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: a SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'facelead.db'}"
        return
    with fresh_pg_database(request.getfixturevalue("pg_admin_engine")) as url:
        yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database (schema at Alembic head), disposed after the test."""
    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def image_store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


# --- end store fixtures ---

# --- face engine fixtures ---
# Real models on real images from ../shared/data; skipped with a reason where absent.
import re  # noqa: E402
from collections import defaultdict  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from facelead.config import Settings  # noqa: E402
from facelead.domain.access import SYSTEM  # noqa: E402
from facelead.domain.gallery import BookingRef  # noqa: E402
from facelead.services.context import Services  # noqa: E402
from facelead.services.gallery import enroll_files  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MEDS_NAME = re.compile(r"S(\d+)-(\d+)-t10_(\d+)\.jpg$")


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"reference face data not found at {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def meds_dir() -> Path:
    return _require(SHARED_DATA / "meds")


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return _require(SHARED_DATA / "lfw")


def make_services(home: Path, database_url: str | None = None) -> Services:
    services = Services(Settings(home=home, database_url=database_url))
    services.initialise()
    return services


@dataclass(frozen=True)
class MedsGallery:
    services: Services
    probes: list[tuple[Path, str]]  # held-out frontal photo of a later booking, subject
    enrolled: dict[str, int]


def meds_split(meds: Path) -> tuple[dict[Path, BookingRef], list[tuple[Path, str]]]:
    """Gallery refs and held-out probes: the last booking's frontal of multi-booking subjects."""
    rows: dict[str, list[tuple[Path, str, str]]] = defaultdict(list)
    for path in sorted(meds.glob("*.jpg")):
        match = MEDS_NAME.search(path.name)
        assert match, path
        subject, booking, record = match.groups()
        rows[f"S{subject}"].append((path, f"S{subject}-{booking}", record))
    refs: dict[Path, BookingRef] = {}
    probes: list[tuple[Path, str]] = []
    for subject, items in rows.items():
        bookings = sorted({b for _, b, _ in items})
        held = bookings[-1] if len(bookings) > 1 else None
        for path, booking, record in items:
            if booking == held:
                if record == "01":
                    probes.append((path, subject))
                continue
            refs[path.resolve()] = BookingRef(subject, booking, agency="MEDS")
    return refs, probes


@pytest.fixture(scope="session")
def meds_gallery(meds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MedsGallery:
    """MEDS booking photos enrolled once per session (SQLite), probes held out."""
    services = make_services(tmp_path_factory.mktemp("meds-home"))
    refs, probes = meds_split(meds_dir)
    counts: dict[str, int] = defaultdict(int)
    for result in enroll_files(services, SYSTEM, sorted(refs), refs):
        counts[result.status.value] += 1
    return MedsGallery(services, probes, dict(counts))


# --- end face engine fixtures ---

# --- identity fixtures ---
# Real accounts in real databases: an installed admin, users per role, TOTP codes
# computed for an explicit time (tests inject the clock instead of sleeping).
import datetime as dt  # noqa: E402

from facelead.domain.access import Actor  # noqa: E402
from facelead.domain.identity import totp_code  # noqa: E402
from facelead.services import identity as identity_service  # noqa: E402
from facelead.store.models import utcnow  # noqa: E402

ADMIN_PASSWORD = "installer passphrase for tests"
USER_PASSWORD = "a user passphrase for tests"


@dataclass
class Installed:
    """A FaceLead home with its first admin logged in; secrets kept for later logins."""

    services: Services
    admin: Actor
    secrets: dict[str, str]

    def add(self, username: str, *roles: str, certified_until: dt.date | None = None) -> None:
        enrolment = identity_service.add_user(
            self.services, self.admin, username, USER_PASSWORD, roles, "LACRIS"
        )
        self.secrets[username] = enrolment.totp_secret
        if certified_until is not None:
            identity_service.certify_user(self.services, self.admin, username, certified_until)

    def login(self, username: str, now: dt.datetime | None = None, **kw: str) -> Actor:
        """Log in with the right password and the TOTP code of ``now``, unless overridden."""
        now = now or utcnow()
        password = kw.get("password", ADMIN_PASSWORD if username == "admin" else USER_PASSWORD)
        code = kw["code"] if "code" in kw else totp_code(self.secrets[username], now)
        return identity_service.login(self.services, username, password, code, "test", now=now)


def install(home: Path, database_url: str | None = None) -> Installed:
    services = make_services(home, database_url)
    enrolment = identity_service.create_first_admin(
        services, "admin", ADMIN_PASSWORD, agency="LACRIS", agency_name="LA County"
    )
    installed = Installed(services, SYSTEM, {"admin": enrolment.totp_secret})
    installed.admin = installed.login("admin")
    return installed


@pytest.fixture
def installed(tmp_path: Path, database_url: str) -> Iterator[Installed]:
    """An installed home on each database backend."""
    result = install(tmp_path / "home", database_url)
    yield result
    result.services.db.dispose()


def provision_token(home: Path, username: str, *roles: str) -> str:
    """Install ``home`` (SQLite) if new and add a user with ``roles``; returns their API token."""
    services = make_services(home)
    if identity_service.needs_first_admin(services):
        identity_service.create_first_admin(
            services, "admin", ADMIN_PASSWORD, agency="LACRIS", agency_name="LA County"
        )
    identity_service.add_user(services, SYSTEM, username, USER_PASSWORD, roles, "LACRIS")
    token = identity_service.issue_token(services, SYSTEM, username, days=1).token
    services.db.dispose()
    return token


# --- end identity fixtures ---

# --- audit fixtures ---
# Real databases. Tampering tests drop the append-only triggers first, as an
# administrator with database access could; the hash chain must still catch them.
from facelead.audit import log as audit_log  # noqa: E402
from facelead.audit.chain import AuditRecord  # noqa: E402
from facelead.domain.access import Role  # noqa: E402
from facelead.services import audit as audit_service  # noqa: E402
from facelead.store.audit_models import AuditEvent, AuditHead  # noqa: E402

AUDIT_TRIGGERS = {
    "audit_events_no_update": "audit_events",
    "audit_events_no_delete": "audit_events",
    "audit_checkpoints_no_update": "audit_checkpoints",
    "audit_checkpoints_no_delete": "audit_checkpoints",
    "audit_head_forward": "audit_head",
}


def drop_audit_guards(db: Database) -> None:
    """What an administrator does before editing the log by hand."""
    with db.engine.begin() as conn:
        for trigger, table in AUDIT_TRIGGERS.items():
            on = f" ON {table}" if not db.is_sqlite else ""
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger}{on}"))
        if db.is_sqlite:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_head_no_delete"))


def audit_actor(*roles: Role, name: str = "audra", agency: str = "LACRIS") -> Actor:
    """A person holding ``roles``; the permission matrix is what is under test."""
    return Actor(user_id=None, username=name, roles=frozenset(roles), agency=agency)


def load_audit_records(db: Database, records: list[AuditRecord]) -> None:
    """Restore a generated, correctly chained log into an empty database (bulk, fast)."""
    drop_audit_guards(db)
    rows = [{**r.as_dict(), "ts": r.when} for r in records]
    with db.session() as session:
        for start in range(0, len(rows), 1000):
            session.execute(sa.insert(AuditEvent), rows[start : start + 1000])
        last = records[-1]
        session.execute(sa.update(AuditHead).values(seq=last.seq, hash=last.hash))


@pytest.fixture
def audit_services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    """A deployment on each backend signing a checkpoint every 10 events."""
    services = make_services(tmp_path / "home", database_url)
    audit_service.attach(services, every=10)
    yield services
    audit_log.configure_checkpoints(services.settings.effective_database_url, None)
    services.db.dispose()


# --- end audit fixtures ---

# --- api fixtures ---
# The REST API over real accounts: one user per role with a real bearer token,
# requests through the whole application (middleware, handlers, services, database).
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from facelead.api.app import create_app  # noqa: E402

API_CERTIFIED = dt.date.today() + dt.timedelta(days=365)
API_PEOPLE = {
    "rita": ("records",),
    "ivy": ("investigator",),
    "erin": ("examiner",),
    "ezra": ("examiner",),
    "sam": ("supervisor",),
    "audra": ("auditor",),
}


@dataclass
class Api:
    """A client plus who is who; ``call`` records which routes were exercised how."""

    client: TestClient
    installed: Installed
    tokens: dict[str, str]
    seen: dict[tuple[str, str], set[int]]

    @property
    def services(self) -> Services:
        return self.installed.services

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def call(
        self,
        who: str | None,
        method: str,
        route: str,
        expect: int,
        code: str | None = None,
        *,
        path: Mapping[str, object] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Call ``route`` (the OpenAPI path below /api/v1, ``{fields}`` filled from ``path``)
        as ``who``; assert the status, and for an error its JSON shape and ``code``."""
        sent = {**(self.auth(who) if who else {}), **(headers or {})}
        url = "/api/v1" + route.format(**(path or {}))
        # starlette types TestClient against httpx2 (absent here, so Any); it is httpx's.
        response: httpx.Response = self.client.request(method, url, headers=sent, **kwargs)
        assert response.status_code == expect, (who, method, url, response.text[:600])
        if expect >= 400:
            body = response.json()
            assert set(body) <= {"code", "message", "details"} and body["message"], body
            assert code is None or body["code"] == code, body
        self.seen.setdefault((method, route), set()).add(expect)
        return response

    def assert_covered(self, routes: set[tuple[str, str]], refusal: int = 403) -> None:
        """Every route was called once allowed (2xx) and once refused with ``refusal``."""
        for route in sorted(routes):
            statuses = self.seen.get(route, set())
            assert any(200 <= s < 300 for s in statuses), f"{route}: no allowed call"
            assert refusal in statuses, f"{route}: no {refusal} call"


def api_for(installed: Installed) -> Api:
    services = installed.services
    for name, roles in API_PEOPLE.items():
        installed.add(name, *roles, certified_until=API_CERTIFIED)
    tokens = {
        name: identity_service.issue_token(services, installed.admin, name, days=1).token
        for name in ("admin", *API_PEOPLE)
    }
    client = TestClient(create_app(services, web=False), raise_server_exceptions=False)
    return Api(client, installed, tokens, {})


@pytest.fixture
def api(installed: Installed) -> Iterator[Api]:
    """The API with a user per role and their tokens, on each database backend."""
    world = api_for(installed)
    with world.client:
        yield world


# --- end api fixtures ---

# --- web fixtures ---
# The real application (REST API + web pages, facelead.api.app.create_app) on a fresh
# SQLite home, with one account per role created through the identity service; the TOTP
# secrets returned at creation are kept so tests log in as a person would.
import re as _re  # noqa: E402

from fastapi import FastAPI  # noqa: E402

WEB_PASSWORD = "a web user passphrase"
WEB_CERTIFIED = dt.date.today() + dt.timedelta(days=365)
WEB_PEOPLE = {
    "ivan": ("investigator",),
    "erin": ("examiner",),
    "vera": ("examiner",),
    "audrey": ("auditor",),
}


@dataclass
class WebSite:
    """A FaceLead home, its application and the TOTP secret of each account."""

    services: Services
    secrets: dict[str, str]

    def app(self) -> FastAPI:
        return create_app(self.services)

    def password(self, username: str) -> str:
        return ADMIN_PASSWORD if username == "admin" else WEB_PASSWORD


def web_install(home: Path, people: dict[str, tuple[str, ...]] | None = None) -> WebSite:
    """First admin plus ``people`` (certified), created by the installer as `facelead init` does."""
    services = make_services(home)
    enrolment = identity_service.create_first_admin(
        services, "admin", ADMIN_PASSWORD, agency="LACRIS", agency_name="LA County"
    )
    secrets = {"admin": enrolment.totp_secret}
    for name, roles in (WEB_PEOPLE if people is None else people).items():
        added = identity_service.add_user(services, SYSTEM, name, WEB_PASSWORD, roles, "LACRIS")
        identity_service.certify_user(services, SYSTEM, name, WEB_CERTIFIED)
        secrets[name] = added.totp_secret
    return WebSite(services, secrets)


@pytest.fixture
def web_site(tmp_path: Path) -> Iterator[WebSite]:
    site = web_install(tmp_path / "home")
    yield site
    site.services.db.dispose()


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def hidden_field(html: str, name: str) -> str:
    """The value of a hidden form field in a page (login token, CSRF token)."""
    match = _re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page"
    return match.group(1)


# --- end web fixtures ---
