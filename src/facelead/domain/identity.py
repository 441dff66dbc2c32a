"""Identity rules: usernames, password policy, lockout, TOTP and API-token rules.

Pure functions of their inputs (the clock is always passed in), so every rule
is testable without sleeping and the services layer only has to apply them.
Sources: FBI CJIS Security Policy 5.6 (identification and authentication,
advanced authentication) and NIST SP 800-63B (memorised secrets, OTP replay,
no composition rules, block-list of common passwords).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from facelead.domain.access import Role
from facelead.errors import InputError

USERNAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{1,63}")
AGENCY_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9_-]{1,31}")
TOKEN_PREFIX = "fl_"  # lets secret scanners recognise a leaked FaceLead token
TOTP_ISSUER = "FaceLead"
TOTP_DIGITS = 6

# NIST SP 800-63B 5.1.1.2: refuse passwords known to be common or guessable.
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "qwerty123456",
        "letmein",
        "welcome",
        "iloveyou",
        "changeme",
        "administrator",
        "facelead",
        "lacris",
        "sheriff",
        "police",
        "detective",
    }
)
SEQUENCES = ("0123456789" * 4, "abcdefghijklmnopqrstuvwxyz" * 2, "qwertyuiopasdfghjklzxcvbnm" * 2)
MIN_DISTINCT_CHARACTERS = 5


def normalise_username(name: str) -> str:
    """Usernames compare case-insensitively; one spelling is stored."""
    candidate = name.strip().lower()
    if not USERNAME_PATTERN.fullmatch(candidate):
        raise InputError(
            "username: 2-64 characters, a letter first, then letters, digits, '.', '_' or '-'",
            code="invalid_username",
        )
    return candidate


def normalise_agency(code: str) -> str:
    candidate = code.strip().upper()
    if not AGENCY_PATTERN.fullmatch(candidate):
        raise InputError("agency code: 2-32 letters, digits, '_' or '-'", code="invalid_agency")
    return candidate


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """At least one known role: a user without a role could do nothing but log in."""
    roles: set[Role] = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower()))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise InputError(
                f"unknown role {name!r}; known: {known}", code="unknown_role"
            ) from None
    if not roles:
        raise InputError("a user needs at least one role", code="unknown_role")
    return frozenset(roles)


@dataclass(frozen=True)
class PasswordPolicy:
    """NIST SP 800-63B: length and a block-list, no composition rules, no expiry."""

    min_length: int = 12
    max_length: int = 256  # bounds the hashing work one request can cause

    def check(self, password: str, username: str) -> None:
        """Raise ``weak_password`` naming the rule, never echoing the password."""
        problem = self._problem(password, username)
        if problem:
            raise InputError(f"password refused: {problem}", code="weak_password")

    def _problem(self, password: str, username: str) -> str | None:
        lowered = password.lower()
        if len(password) < self.min_length:
            return f"use at least {self.min_length} characters"
        if len(password) > self.max_length:
            return f"use at most {self.max_length} characters"
        if lowered in COMMON_PASSWORDS or lowered.rstrip("0123456789!") in COMMON_PASSWORDS:
            return "it is a commonly used password"
        if username and username.lower() in lowered:
            return "it contains the username"
        if len(set(password)) < MIN_DISTINCT_CHARACTERS:
            return "it repeats too few characters"
        if any(lowered in sequence for sequence in SEQUENCES):
            return "it is a keyboard or number sequence"
        return None


@dataclass(frozen=True)
class LockoutState:
    failures: int
    locked_until: dt.datetime | None


@dataclass(frozen=True)
class LockoutPolicy:
    """CJIS 5.5.3: lock after consecutive failures; here unlocked by time or an admin."""

    max_failures: int = 5
    lock_for: dt.timedelta = dt.timedelta(minutes=30)

    def is_locked(self, locked_until: dt.datetime | None, now: dt.datetime) -> bool:
        return locked_until is not None and now < locked_until

    def after_failure(
        self, failures: int, locked_until: dt.datetime | None, now: dt.datetime
    ) -> LockoutState:
        """Count one more failure; a served lock starts the count afresh."""
        if locked_until is not None and now >= locked_until:
            failures = 0
        failures += 1
        if failures >= self.max_failures:
            return LockoutState(failures, now + self.lock_for)
        return LockoutState(failures, None)


@dataclass(frozen=True)
class TokenPolicy:
    """API tokens are bearer secrets: short-lived by default, never open-ended."""

    default_days: int = 30
    max_days: int = 90

    def expiry(self, now: dt.datetime, days: int | None) -> dt.datetime:
        days = self.default_days if days is None else days
        if not 1 <= days <= self.max_days:
            raise InputError(
                f"token lifetime must be 1-{self.max_days} days", code="invalid_token_lifetime"
            )
        return now + dt.timedelta(days=days)

    @staticmethod
    def refusal(
        revoked_at: dt.datetime | None, expires_at: dt.datetime, now: dt.datetime
    ) -> str | None:
        """The refusal code for a known token, or None when it may be used."""
        if revoked_at is not None:
            return "token_revoked"
        if now >= expires_at:
            return "token_expired"
        return None


@dataclass(frozen=True)
class IdentityPolicy:
    password: PasswordPolicy = field(default_factory=PasswordPolicy)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    token: TokenPolicy = field(default_factory=TokenPolicy)
    max_certification: dt.timedelta = dt.timedelta(days=2 * 366)

    def check_certification(self, until: dt.date, today: dt.date) -> None:
        """A past date withdraws certification; a far-future one is a typo, refused."""
        if until > today + self.max_certification:
            raise InputError(
                f"certification may run at most {self.max_certification.days} days ahead",
                code="invalid_certification",
            )


# --- passwords (argon2id, RFC 9106 parameters of argon2-cffi) ---

_HASHER = PasswordHasher()


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    needs_rehash: bool = False


# The hash of a random, discarded password: verified against when a username is
# unknown, so that the time a refusal takes does not tell whether the user exists.
_DECOY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$d5poZ5ZTvktbMCbPdtn2wQ"
    "$YYztS5yTjaVAM5trvumnyXika7U0WKjcwe7IinpEqYQ"
)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> PasswordCheck:
    """Constant-work verification; ``needs_rehash`` when the parameters have moved on."""
    try:
        _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return PasswordCheck(ok=False)
    return PasswordCheck(ok=True, needs_rehash=_HASHER.check_needs_rehash(stored_hash))


def spend_verification(password: str) -> None:
    """Do the work of one verification that cannot succeed (unknown username)."""
    decoy = _DECOY_HASH if not _HASHER.check_needs_rehash(_DECOY_HASH) else _fresh_decoy()
    verify_password(decoy, password)


@cache
def _fresh_decoy() -> str:
    """Only when the hasher's parameters moved on from the literal above."""
    return _HASHER.hash(secrets.token_urlsafe(24))


# --- TOTP (RFC 6238, 30-second steps, 6 digits) ---


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app scans (as a QR code) or imports."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def totp_code(secret: str, now: dt.datetime) -> str:
    """The code an authenticator shows at ``now`` (tests and the demo use it)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(now))


def match_totp(
    secret: str, code: str, now: dt.datetime, last_step: int | None, window: int = 1
) -> int | None:
    """The time step ``code`` belongs to, or None.

    One step of clock drift either way is allowed. A step at or before the
    last accepted one is refused: NIST SP 800-63B 5.1.4.2 requires a TOTP to be
    accepted only once.
    """
    code = code.replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - window, current + window + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


# --- API tokens ---


def new_token() -> str:
    """32 random bytes, URL-safe; shown to the holder once, never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps: SHA-256 of a high-entropy secret needs no salt."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


# --- what services hand to interfaces ---


@dataclass(frozen=True)
class UserView:
    user_id: int
    username: str
    agency: str
    roles: tuple[Role, ...]
    disabled: bool
    locked_until: dt.datetime | None
    certified_until: dt.date | None
    last_login_at: dt.datetime | None
    created_at: dt.datetime

    def locked_on(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True)
class MfaEnrolment:
    """A new TOTP secret, returned once: it is never shown again."""

    user: UserView
    totp_secret: str = field(repr=False)
    provisioning_uri: str = field(repr=False)


@dataclass(frozen=True)
class IssuedToken:
    token_id: int
    username: str
    label: str
    expires_at: dt.datetime
    token: str = field(repr=False)


@dataclass(frozen=True)
class TokenView:
    token_id: int
    username: str
    label: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
