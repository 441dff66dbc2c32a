"""Identity use cases: accounts, training, MFA, API tokens, and logging in.

``accounts`` holds what admins do (users, certification, MFA reset, tokens);
``login`` turns a password + TOTP code, or an API token, into an ``Actor``;
``sessions`` issues and revokes the short-lived tokens of interactive logins.
Interfaces import from here.
"""

from facelead.services.identity.accounts import (
    add_user,
    certify_user,
    create_first_admin,
    disable_user,
    enable_user,
    issue_token,
    list_tokens,
    list_users,
    needs_first_admin,
    reset_mfa,
    revoke_token,
)
from facelead.services.identity.common import identity_policy
from facelead.services.identity.login import actor_for_user, authenticate_token, login
from facelead.services.identity.sessions import close_session, open_session

__all__ = [
    "actor_for_user",
    "add_user",
    "authenticate_token",
    "certify_user",
    "close_session",
    "create_first_admin",
    "disable_user",
    "enable_user",
    "identity_policy",
    "issue_token",
    "list_tokens",
    "list_users",
    "login",
    "needs_first_admin",
    "open_session",
    "reset_mfa",
    "revoke_token",
]
