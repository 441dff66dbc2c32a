"""Server-side web sessions: a random id in an HttpOnly cookie, everything else here.

The cookie carries only a random 256-bit id; the store keys sessions by its
SHA-256, so nothing in memory can be replayed as a cookie. A session holds
the user id (the actor is rebuilt from the database on every request, so
disabling an account or letting training lapse takes effect at once), the
CSRF synchroniser token, and the last-seen time that enforces the CJIS idle
timeout (30 minutes). Sessions live in this process only: a restart logs
everyone out, which is the safe failure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

Clock = Callable[[], dt.datetime]

IDLE_TIMEOUT = dt.timedelta(minutes=30)  # CJIS Security Policy 5.5.5 session lock
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)  # one shift; then log in again
MAX_SESSIONS = 10_000
MAX_FLASHES = 5
MAX_RECENT_CASES = 8


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass
class PendingProbe:
    """An uploaded probe waiting for its requester to choose one of several faces."""

    token: str
    data: bytes
    filename: str


@dataclass
class IssuedReport:
    """The files of the lead report last issued in this session, for download."""

    search_id: int
    html: str
    pdf: bytes
    filename: str


@dataclass
class WebSession:
    user_id: int
    username: str
    csrf_token: str
    created: dt.datetime
    last_seen: dt.datetime
    flashes: list[tuple[str, str]] = field(default_factory=list)
    drafts: dict[str, dict[str, str]] = field(default_factory=dict)
    pending_probe: PendingProbe | None = None
    issued_report: IssuedReport | None = None
    recent_cases: list[str] = field(default_factory=list)

    def flash(self, level: str, message: str) -> None:
        """A message for the next page (post/redirect/get)."""
        self.flashes = [*self.flashes, (level, message)][-MAX_FLASHES:]

    def pop_flashes(self) -> list[tuple[str, str]]:
        shown, self.flashes = self.flashes, []
        return shown

    def pop_draft(self, form: str) -> dict[str, str]:
        """What the user typed into a refused form, so they need not type it again."""
        return self.drafts.pop(form, {})

    def remember_case(self, number: str) -> None:
        rest = [n for n in self.recent_cases if n != number]
        self.recent_cases = [number, *rest][:MAX_RECENT_CASES]

    def csrf_matches(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token, token or "")


class Lookup(Enum):
    MISSING = "missing"
    EXPIRED = "expired"


class SessionStore:
    """In-memory, thread-safe; ``clock`` is injectable so tests can pass 30 minutes at once."""

    def __init__(
        self,
        *,
        idle_timeout: dt.timedelta = IDLE_TIMEOUT,
        absolute_timeout: dt.timedelta = ABSOLUTE_TIMEOUT,
        clock: Clock = utc_now,
    ) -> None:
        self.idle_timeout, self.absolute_timeout = idle_timeout, absolute_timeout
        self.clock = clock
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def create(self, user_id: int, username: str) -> tuple[str, WebSession]:
        """A new session with fresh id and CSRF token (never reuses one: no fixation)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        session = WebSession(user_id, username, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._prune(now)
            if len(self._sessions) >= MAX_SESSIONS:  # evict the longest idle
                oldest = min(self._sessions, key=lambda k: self._sessions[k].last_seen)
                del self._sessions[oldest]
            self._sessions[_digest(session_id)] = session
        return session_id, session

    def touch(self, session_id: str | None) -> WebSession | Lookup:
        """The live session for this cookie, its idle clock restarted; or why there is none."""
        if not session_id:
            return Lookup.MISSING
        key, now = _digest(session_id), self.clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return Lookup.MISSING
            if self._expired(session, now):
                del self._sessions[key]
                return Lookup.EXPIRED
            session.last_seen = now
            return session

    def destroy(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_digest(session_id), None)

    def destroy_user(self, user_id: int) -> int:
        """End every session of one user (account disabled); returns how many."""
        with self._lock:
            keys = [k for k, s in self._sessions.items() if s.user_id == user_id]
            for key in keys:
                del self._sessions[key]
        return len(keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _expired(self, session: WebSession, now: dt.datetime) -> bool:
        return (
            now - session.last_seen > self.idle_timeout
            or now - session.created > self.absolute_timeout
        )

    def _prune(self, now: dt.datetime) -> None:
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]
