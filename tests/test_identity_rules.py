"""Identity rules in domain/identity.py: pure functions, explicit clock, no database."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyotp
import pytest
from argon2 import PasswordHasher

from facelead.domain.access import Role
from facelead.domain.identity import (
    IdentityPolicy,
    LockoutPolicy,
    PasswordPolicy,
    TokenPolicy,
    hash_password,
    match_totp,
    new_token,
    normalise_username,
    parse_roles,
    token_digest,
    totp_code,
    verify_password,
)
from facelead.errors import InputError

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def test_password_hash_is_argon2id_with_salt_and_verifies() -> None:
    stored = hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$v=19$m=")
    assert stored != hash_password("a long enough passphrase")  # salted
    assert verify_password(stored, "a long enough passphrase").ok
    assert not verify_password(stored, "a long enough passphrasE").ok
    assert not verify_password("not a hash", "anything").ok


def test_weaker_parameters_ask_for_a_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("some passphrase!")
    check = verify_password(weak, "some passphrase!")
    assert check.ok and check.needs_rehash
    assert not verify_password(hash_password("some passphrase!"), "some passphrase!").needs_rehash


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short pass", "at least 12"),
        ("x" * 257, "at most 256"),
        ("Password1234", "commonly used"),
        ("my name is jdoe, hi", "contains the username"),
        ("abababababababab", "too few characters"),
        ("1234567890123", "sequence"),
        ("qwertyuiopasdf", "sequence"),
    ],
)
def test_password_policy_refuses_weak_passwords(password: str, problem: str) -> None:
    with pytest.raises(InputError) as refused:
        PasswordPolicy().check(password, "jdoe")
    assert refused.value.code == "weak_password"
    assert problem in refused.value.message
    assert password not in refused.value.message


def test_password_policy_accepts_long_passphrases_without_composition_rules() -> None:
    PasswordPolicy().check("correct horse battery staple", "jdoe")
    PasswordPolicy(min_length=8).check("tr0ub4dor", "jdoe")


def test_lockout_after_max_failures_and_unlock_after_the_window() -> None:
    policy = LockoutPolicy(max_failures=3, lock_for=dt.timedelta(minutes=30))
    failures, locked_until = 0, None
    for _ in range(2):
        state = policy.after_failure(failures, locked_until, NOW)
        failures, locked_until = state.failures, state.locked_until
        assert locked_until is None
    state = policy.after_failure(failures, locked_until, NOW)
    assert state == type(state)(3, NOW + dt.timedelta(minutes=30))
    assert policy.is_locked(state.locked_until, NOW + dt.timedelta(minutes=29, seconds=59))
    assert not policy.is_locked(state.locked_until, NOW + dt.timedelta(minutes=30))
    # A failure after a served lock starts counting again from one.
    later = policy.after_failure(state.failures, state.locked_until, NOW + dt.timedelta(hours=1))
    assert later.failures == 1 and later.locked_until is None


def test_token_expiry_and_refusals() -> None:
    policy = TokenPolicy(default_days=30, max_days=90)
    assert policy.expiry(NOW, None) == NOW + dt.timedelta(days=30)
    assert policy.expiry(NOW, 90) == NOW + dt.timedelta(days=90)
    for days in (0, 91, -1):
        with pytest.raises(InputError) as refused:
            policy.expiry(NOW, days)
        assert refused.value.code == "invalid_token_lifetime"
    expires = NOW + dt.timedelta(days=1)
    assert policy.refusal(None, expires, NOW) is None
    assert policy.refusal(None, expires, expires) == "token_expired"
    assert policy.refusal(NOW, expires, NOW) == "token_revoked"


def test_tokens_are_random_and_only_their_digest_is_kept() -> None:
    first, second = new_token(), new_token()
    assert first != second and first.startswith("fl_") and len(first) >= 3 + 43
    assert token_digest(first) == hashlib.sha256(first.encode()).hexdigest()
    assert first not in token_digest(first)


def test_totp_accepts_one_step_of_drift_and_never_the_same_step_twice() -> None:
    secret = pyotp.random_base32()
    code = totp_code(secret, NOW)
    assert code == pyotp.TOTP(secret).at(NOW)
    step = match_totp(secret, code, NOW, last_step=None)
    assert step == pyotp.TOTP(secret).timecode(NOW)
    assert match_totp(secret, code, NOW + dt.timedelta(seconds=30), last_step=None) == step
    assert match_totp(secret, code, NOW + dt.timedelta(seconds=90), last_step=None) is None
    assert match_totp(secret, code, NOW, last_step=step) is None  # replay
    assert match_totp(secret, "12345", NOW, last_step=None) is None
    assert match_totp(secret, "abcdef", NOW, last_step=None) is None


def test_usernames_and_roles_are_validated() -> None:
    assert normalise_username("  JDoe ") == "jdoe"
    for bad in ("", "j", "1abc", "a b", "x" * 65, "jd\x00oe"):
        with pytest.raises(InputError):
            normalise_username(bad)
    assert parse_roles(["Examiner", "supervisor"]) == {Role.EXAMINER, Role.SUPERVISOR}
    for bad_roles in ([], ["god"]):
        with pytest.raises(InputError) as refused:
            parse_roles(bad_roles)
        assert refused.value.code == "unknown_role"


def test_certification_cannot_run_years_ahead() -> None:
    policy = IdentityPolicy()
    today = NOW.date()
    policy.check_certification(today + dt.timedelta(days=365), today)
    policy.check_certification(today - dt.timedelta(days=1), today)  # withdrawal
    with pytest.raises(InputError) as refused:
        policy.check_certification(today + dt.timedelta(days=3 * 365), today)
    assert refused.value.code == "invalid_certification"
