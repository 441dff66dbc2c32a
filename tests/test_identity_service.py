"""Identity services on real databases (SQLite and PostgreSQL): login, lockout, MFA,
tokens, training certification and what the audit log keeps of refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from facelead.audit.log import iter_records
from facelead.domain.access import Action
from facelead.domain.identity import totp_code
from facelead.errors import AuthenticationError, ConflictError, FaceLeadError, PermissionDenied
from facelead.services import identity
from facelead.services.uow import authorise
from facelead.store.identity_models import ApiToken, User
from facelead.store.models import utcnow
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, Installed

STEP = dt.timedelta(seconds=30)


def _user(installed: Installed, username: str) -> User:
    with installed.services.db.session() as session:
        user = session.scalar(sa.select(User).where(User.username == username))
        assert user is not None
        return user


def _refused(
    expected: str, call: Callable[..., object], /, *args: object, **kwargs: object
) -> FaceLeadError:
    """Call, expect a FaceLead refusal with exactly the ``expected`` code."""
    with pytest.raises(FaceLeadError) as refused:
        call(*args, **kwargs)
    assert refused.value.code == expected, refused.value.as_dict()
    return refused.value


def _logins(installed: Installed) -> list[tuple[str, str]]:
    with installed.services.db.session() as session:
        records = iter_records(session, actions=[Action.AUTH_LOGIN.value])
        return [(r.actor, r.outcome) for r in records]


def test_first_admin_only_once(installed: Installed) -> None:
    assert not identity.needs_first_admin(installed.services)
    _refused(
        "user_exists",
        identity.create_first_admin,
        installed.services,
        "second",
        ADMIN_PASSWORD,
        agency="LACRIS",
        agency_name="x",
    )
    assert [u.username for u in identity.list_users(installed.services, installed.admin)] == [
        "admin"
    ]
    assert installed.admin.user_id is not None and installed.admin.agency == "LACRIS"


def test_secrets_are_not_stored_in_the_clear(installed: Installed) -> None:
    installed.add("clerk", "records")
    token = identity.issue_token(installed.services, installed.admin, "clerk")
    user = _user(installed, "clerk")
    assert user.password_hash.startswith("$argon2id$") and USER_PASSWORD not in user.password_hash
    assert installed.secrets["clerk"] not in user.totp_secret
    with installed.services.db.session() as session:
        stored = session.scalars(sa.select(ApiToken.token_sha256)).all()
    assert token.token not in stored and len(stored) == 1 and len(stored[0]) == 64
    key = installed.services.settings.keys_dir / "mfa.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_duplicate_user_and_weak_password_are_refused(installed: Installed) -> None:
    installed.add("jdoe", "investigator")
    add = identity.add_user
    svc, admin = installed.services, installed.admin
    _refused("user_exists", add, svc, admin, "JDoe", USER_PASSWORD, ["examiner"], "LACRIS")
    _refused("weak_password", add, svc, admin, "other", "short", ["examiner"], "LACRIS")
    _refused("agency_not_found", add, svc, admin, "other", USER_PASSWORD, ["examiner"], "NOPE")
    _refused("unknown_role", add, svc, admin, "other", USER_PASSWORD, ["root"], "LACRIS")
    assert [u.username for u in identity.list_users(svc, admin)] == ["admin", "jdoe"]


def test_unknown_user_and_wrong_password_look_the_same(installed: Installed) -> None:
    installed.add("jdoe", "investigator")
    now = utcnow()
    unknown = _refused("bad_credentials", installed.login, "nobody", now, password="x", code="1")
    wrong = _refused("bad_credentials", installed.login, "jdoe", now, password="wrong password")
    assert isinstance(unknown, AuthenticationError) and unknown.message == wrong.message
    with installed.services.db.session() as session:
        events = {r.actor: r for r in iter_records(session, actions=["auth.login"])}
    assert (events["nobody"].outcome, events["nobody"].role, events["nobody"].actor_id) == (
        "refused:bad_credentials",
        None,
        None,
    )
    assert events["jdoe"].outcome == "refused:bad_credentials"
    assert events["jdoe"].actor_id == _user(installed, "jdoe").id


def test_lockout_after_five_failures_survives_the_refusal_and_ends_after_30_minutes(
    installed: Installed,
) -> None:
    installed.add("jdoe", "investigator")
    now = utcnow()
    for attempt in range(1, 5):
        _refused("bad_credentials", installed.login, "jdoe", now, password="wrong password")
        assert _user(installed, "jdoe").failed_attempts == attempt  # committed despite refusal
    _refused("account_locked", installed.login, "jdoe", now, password="wrong password")
    # Locked: even the right password and code are refused, until the window ends.
    _refused("account_locked", installed.login, "jdoe", now + 29 * 2 * STEP)
    actor = installed.login("jdoe", now + 30 * 2 * STEP)
    assert actor.username == "jdoe" and _user(installed, "jdoe").failed_attempts == 0
    outcomes = [o for who, o in _logins(installed) if who == "jdoe"]
    assert outcomes == ["refused:bad_credentials"] * 4 + ["refused:account_locked"] * 2 + ["ok"]


def test_lockout_threshold_comes_from_settings(installed: Installed) -> None:
    installed.services.settings.__dict__["lockout_max_failures"] = 2
    assert identity.identity_policy(installed.services).lockout.max_failures == 2
    installed.add("jdoe", "investigator")
    now = utcnow()
    _refused("bad_totp", installed.login, "jdoe", now, code="000000")
    _refused("account_locked", installed.login, "jdoe", now, code="000000")


def test_admin_enable_clears_a_lockout(installed: Installed) -> None:
    installed.add("jdoe", "investigator")
    now = utcnow()
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            installed.login("jdoe", now, password="wrong password")
    identity.enable_user(installed.services, installed.admin, "jdoe")
    assert installed.login("jdoe", now).username == "jdoe"


def test_disabled_account_is_refused_and_its_tokens_revoked(installed: Installed) -> None:
    installed.add("jdoe", "investigator")
    token = identity.issue_token(installed.services, installed.admin, "jdoe").token
    view = identity.disable_user(installed.services, installed.admin, "jdoe")
    assert view.disabled
    _refused("account_disabled", installed.login, "jdoe")
    _refused("token_revoked", identity.authenticate_token, installed.services, token)
    identity.enable_user(installed.services, installed.admin, "jdoe")
    _refused("token_revoked", identity.authenticate_token, installed.services, token)
    assert installed.login("jdoe").username == "jdoe"


def test_last_enabled_admin_cannot_be_disabled(installed: Installed) -> None:
    _refused("last_admin", identity.disable_user, installed.services, installed.admin, "admin")
    installed.add("admin2", "admin")
    assert identity.disable_user(installed.services, installed.admin, "admin2").disabled


def test_totp_is_required_checked_and_single_use(installed: Installed) -> None:
    installed.add("jdoe", "examiner")
    now = utcnow()
    _refused("mfa_required", installed.login, "jdoe", now, code="")
    wrong = f"{(int(totp_code(installed.secrets['jdoe'], now)) + 1) % 1_000_000:06d}"
    _refused("bad_totp", installed.login, "jdoe", now, code=wrong)
    assert _user(installed, "jdoe").failed_attempts == 1
    installed.login("jdoe", now)
    _refused("bad_totp", installed.login, "jdoe", now)  # replayed code
    assert installed.login("jdoe", now + STEP).username == "jdoe"


def test_reset_mfa_replaces_the_secret(installed: Installed) -> None:
    installed.add("jdoe", "examiner")
    old = installed.secrets["jdoe"]
    enrolment = identity.reset_mfa(installed.services, installed.admin, "jdoe")
    assert enrolment.totp_secret != old and enrolment.provisioning_uri.startswith("otpauth://")
    now = utcnow()
    _refused("bad_totp", installed.login, "jdoe", now, code=totp_code(old, now))
    installed.secrets["jdoe"] = enrolment.totp_secret
    assert installed.login("jdoe", now + STEP).username == "jdoe"


def test_login_rehashes_a_password_hashed_with_old_parameters(installed: Installed) -> None:
    installed.add("jdoe", "examiner")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(USER_PASSWORD)
    with installed.services.db.session() as session:
        session.execute(sa.update(User).where(User.username == "jdoe").values(password_hash=weak))
    installed.login("jdoe")
    stored = _user(installed, "jdoe").password_hash
    assert stored != weak and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_tokens_authenticate_until_revoked_or_expired(installed: Installed) -> None:
    installed.add("clerk", "records")
    svc, admin = installed.services, installed.admin
    now = utcnow()
    issued = identity.issue_token(svc, admin, "clerk", days=1, label="nightly", now=now)
    actor = identity.authenticate_token(svc, issued.token, now=now)
    assert (actor.username, actor.extra["auth"]) == ("clerk", "token")
    later = now + dt.timedelta(days=1)
    _refused("token_expired", identity.authenticate_token, svc, issued.token, now=later)
    identity.revoke_token(svc, admin, issued.token_id)
    _refused("token_revoked", identity.authenticate_token, svc, issued.token, now=now)
    _refused("token_invalid", identity.authenticate_token, svc, issued.token + "x")
    views = identity.list_tokens(svc, admin, "clerk")
    assert [(v.token_id, v.label) for v in views] == [(issued.token_id, "nightly")]
    assert views[0].revoked_at is not None and views[0].last_used_at is not None


def test_training_expiry_blocks_searching_with_the_date_from_the_user_record(
    installed: Installed,
) -> None:
    today = dt.date.today()
    installed.add("jdoe", "investigator", certified_until=today - dt.timedelta(days=1))
    now = utcnow()
    actor = installed.login("jdoe", now)
    assert actor.certified_until == today - dt.timedelta(days=1)
    with pytest.raises(PermissionDenied) as refused:
        authorise(actor, Action.SEARCH_SUBMIT)
    assert refused.value.code == "training_expired"
    authorise(actor, Action.CASE_OPEN)  # training gates searching and reviewing only
    identity.certify_user(installed.services, installed.admin, "jdoe", today)
    assert authorise(installed.login("jdoe", now + STEP), Action.SEARCH_SUBMIT).value == (
        "investigator"
    )


def test_no_token_for_a_disabled_account(installed: Installed) -> None:
    installed.add("jdoe", "investigator")
    identity.disable_user(installed.services, installed.admin, "jdoe")
    error = _refused(
        "account_disabled", identity.issue_token, installed.services, installed.admin, "jdoe"
    )
    assert isinstance(error, ConflictError)
    assert identity.list_tokens(installed.services, installed.admin, "jdoe") == []


def test_actor_for_user_reads_the_record_fresh(installed: Installed) -> None:
    installed.add("jdoe", "examiner")
    user_id = _user(installed, "jdoe").id
    actor = identity.actor_for_user(installed.services, user_id, client_address="10.0.0.1")
    assert actor.username == "jdoe" and actor.client_address == "10.0.0.1"
    identity.disable_user(installed.services, installed.admin, "jdoe")
    _refused("account_disabled", identity.actor_for_user, installed.services, user_id)
