"""Identity repository: the SQL identity services need, and the TOTP secret box.

Like the gallery repository, every function takes the caller's session and
never commits: a use case stays one transaction.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from facelead.errors import ConfigurationError, ConflictError, NotFoundError
from facelead.store.identity_models import Agency, ApiToken, User, UserRole

KEY_FILE_MODE = 0o600


class SecretBox:
    """Encrypts TOTP secrets at rest with a key kept outside the database.

    A copy of the database alone (backup, replica, SQL injection) then yields
    no second factor. The key file is created on first use, readable by the
    owner only; losing it means every user's MFA must be reset.
    """

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path

    def _fernet(self, create: bool) -> Fernet:
        if not self.key_path.exists():
            if not create:
                raise ConfigurationError(
                    f"MFA key missing at {self.key_path}; restore it or reset users' MFA",
                    code="mfa_key_missing",
                )
            self._create_key()
        return Fernet(self.key_path.read_bytes().strip())

    def _create_key(self) -> None:
        """Write the key whole, then link it into place: a racing process sees all or nothing."""
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.key_path.parent, prefix=".mfa-key-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
            os.chmod(temporary, KEY_FILE_MODE)
            with contextlib.suppress(FileExistsError):  # another process won: use theirs
                os.link(temporary, self.key_path)
        finally:
            os.unlink(temporary)

    def seal(self, secret: str) -> str:
        return self._fernet(create=True).encrypt(secret.encode("ascii")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet(create=False).decrypt(sealed.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise ConfigurationError(
                "MFA secret cannot be decrypted with the current key; reset this user's MFA",
                code="mfa_key_mismatch",
            ) from exc


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def lock_users_table(session: Session) -> None:
    """Serialise first-admin creation on PostgreSQL (SQLite serialises writers already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))


def get_agency(session: Session, code: str) -> Agency | None:
    return session.scalar(select(Agency).where(Agency.code == code))


def add_agency(session: Session, code: str, name: str) -> Agency:
    agency = Agency(code=code, name=name)
    session.add(agency)
    session.flush()
    return agency


def get_user(session: Session, user_id: int, *, for_update: bool = False) -> User | None:
    query = select(User).where(User.id == user_id)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query.options(selectinload(User.role_rows), selectinload(User.agency)))


def get_user_by_name(session: Session, username: str) -> User | None:
    query = select(User).where(User.username == username)
    return session.scalar(query.options(selectinload(User.role_rows), selectinload(User.agency)))


def require_user(session: Session, username: str) -> User:
    user = get_user_by_name(session, username)
    if user is None:
        raise NotFoundError(f"no user {username!r}", code="user_not_found")
    return user


def add_user(
    session: Session,
    *,
    username: str,
    agency: Agency,
    password_hash: str,
    totp_secret: str,
    roles: Iterable[str],
    certified_until: date | None,
) -> User:
    """Insert a user; a taken username is ``user_exists`` however the race went."""
    if get_user_by_name(session, username) is not None:
        raise ConflictError(f"user {username!r} already exists", code="user_exists")
    user = User(
        username=username,
        agency=agency,
        password_hash=password_hash,
        totp_secret=totp_secret,
        disabled=False,
        failed_attempts=0,
        certified_until=certified_until,
        role_rows=[UserRole(role=role) for role in sorted(roles)],
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # the use case aborts: no savepoint needed
        raise ConflictError(f"user {username!r} already exists", code="user_exists") from exc
    return user


def list_users(session: Session) -> Sequence[User]:
    query = select(User).order_by(User.username)
    return session.scalars(
        query.options(selectinload(User.role_rows), selectinload(User.agency))
    ).all()


def count_enabled_with_role(session: Session, role: str) -> int:
    query = (
        select(func.count())
        .select_from(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == role, User.disabled.is_(False))
    )
    return int(session.scalar(query) or 0)


def claim_totp_step(session: Session, user_id: int, step: int) -> bool:
    """Record ``step`` as used unless a concurrent login used it (or a later one) first.

    One conditional UPDATE, so two logins racing with the same code cannot both win.
    """
    result = session.execute(
        update(User)
        .where(
            User.id == user_id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def add_token(
    session: Session,
    *,
    user: User,
    digest: str,
    label: str,
    expires_at: datetime,
    issued_by_id: int | None,
) -> ApiToken:
    token = ApiToken(
        user=user,
        token_sha256=digest,
        label=label,
        expires_at=expires_at,
        issued_by_id=issued_by_id,
    )
    session.add(token)
    session.flush()
    return token


def get_token_by_digest(session: Session, digest: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest))


def get_token(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def list_tokens(session: Session, user_id: int) -> Sequence[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    return session.scalars(query).all()
