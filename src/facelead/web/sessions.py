"""Per-session page state that is only a convenience: messages, drafts, a probe awaiting a choice.

Who the user is, and whether the session is still alive, is decided by the
identity service: the cookie carries a session token from ``open_session``,
which expires 30 minutes after its last use (CJIS 5.5.5) and is revoked at
logout or when the account is disabled, in the database, for every worker.

What is kept here, in this process's memory and keyed by the token's
SHA-256 (never the token itself), is only what makes the pages pleasant:
the message for the next page, what a user typed into a refused form, a
probe waiting for its requester to choose a face, and the last lead report
issued. Losing it (a restart, another worker) loses no record and opens no
door; it expires with the same idle timeout as the session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], dt.datetime]

IDLE_TIMEOUT = dt.timedelta(minutes=30)  # the same as the session token's (CJIS 5.5.5)
MAX_STATES = 5_000
MAX_FLASHES = 5
MAX_RECENT_CASES = 8
_CSRF_CONTEXT = b"facelead web csrf v1"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token_for(session_token: str) -> str:
    """The synchroniser token of a session: a MAC of the context under the session's secret.

    Only a holder of the (HttpOnly) session token can compute it, it needs no
    storage (every worker agrees), and it changes with every login.
    """
    return hmac.new(session_token.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


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
class PageState:
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


class PageStates:
    """In-memory and thread-safe; ``clock`` is injectable so tests can let 30 minutes pass."""

    def __init__(self, *, idle_timeout: dt.timedelta = IDLE_TIMEOUT, clock: Clock = utc_now):
        self.idle_timeout, self.clock = idle_timeout, clock
        self._states: dict[str, PageState] = {}
        self._lock = threading.Lock()

    def for_token(self, session_token: str) -> PageState:
        """The state of this session, created on first use; idle ones are dropped."""
        key, now = token_key(session_token), self.clock()
        with self._lock:
            state = self._states.get(key)
            if state is None or now - state.last_seen > self.idle_timeout:
                self._prune(now)
                state = self._states[key] = PageState(now)
            state.last_seen = now
            return state

    def drop(self, session_token: str) -> None:
        with self._lock:
            self._states.pop(token_key(session_token), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._states)

    def _prune(self, now: dt.datetime) -> None:
        stale = [k for k, s in self._states.items() if now - s.last_seen > self.idle_timeout]
        for key in stale:
            del self._states[key]
        while len(self._states) >= MAX_STATES:  # evict the longest idle
            oldest = min(self._states, key=lambda k: self._states[k].last_seen)
            del self._states[oldest]
