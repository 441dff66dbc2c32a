"""``facelead user ...``: accounts, training certification, MFA and API tokens.

Thin: parse, authenticate, call a service, render. Who may do what is decided
in ``services.identity`` (admins manage; admins, supervisors and auditors list).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from facelead.cli.auth import UserOption, current_actor, read_secret
from facelead.cli.output import console, parse_date
from facelead.domain.identity import MfaEnrolment, TokenView, UserView
from facelead.services import identity
from facelead.services.context import Services

NEW_PASSWORD_ENV = "FACELEAD_NEW_PASSWORD"

users_app = typer.Typer(
    help="Manage user accounts, training certification, MFA and API tokens.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="Issue, list and revoke API tokens for scripts.", no_args_is_help=True)
users_app.add_typer(token_app, name="token")

Username = Annotated[str, typer.Argument(help="The account's username.")]


def _services() -> Services:
    services = Services()
    services.initialise()
    return services


def show_enrolment(enrolment: MfaEnrolment) -> None:
    """Print a TOTP secret once: it is not stored anywhere it could be shown again."""
    user = enrolment.user
    console.print(f"user {user.username} ({', '.join(user.roles)}) of {user.agency}", markup=False)
    console.print("Add this to the user's authenticator app now; it is shown only once.")
    console.print(f"TOTP secret: {enrolment.totp_secret}", markup=False)
    console.print(f"TOTP URI: {enrolment.provisioning_uri}", markup=False, soft_wrap=True)


def _user_line(view: UserView) -> str:
    state = "disabled" if view.disabled else "enabled"
    return f"{view.username}: {state}, roles {', '.join(view.roles)}"


@users_app.command("add")
def add(
    username: Username,
    role: Annotated[
        list[str], typer.Option("--role", help="A role to grant (repeat for several).")
    ],
    agency: Annotated[str, typer.Option(help="Code of the user's agency.")],
    agency_name: Annotated[
        str | None, typer.Option(help="Full name: creates the agency if it is new.")
    ] = None,
    user: UserOption = None,
) -> None:
    """Create an account; prints its TOTP secret once.

    The new password comes from FACELEAD_NEW_PASSWORD or a prompt, never an option.
    """
    services = _services()
    actor = current_actor(services, user)
    password = read_secret(NEW_PASSWORD_ENV, f"New password for {username}", confirm=True)
    enrolment = identity.add_user(
        services, actor, username, password, role, agency, agency_name=agency_name
    )
    show_enrolment(enrolment)


@users_app.command("list")
def list_(user: UserOption = None) -> None:
    """List accounts: roles, agency, state, training certification, last login."""
    services = _services()
    views = identity.list_users(services, current_actor(services, user))
    now = dt.datetime.now(dt.UTC)
    table = Table(title="Users")
    for column in ("user", "agency", "roles", "state", "certified until", "last login"):
        table.add_column(column)
    for v in views:
        state = "disabled" if v.disabled else "locked" if v.locked_on(now) else "enabled"
        table.add_row(
            v.username,
            v.agency,
            ", ".join(v.roles),
            state,
            v.certified_until.isoformat() if v.certified_until else "—",
            v.last_login_at.isoformat(timespec="minutes") if v.last_login_at else "—",
        )
    console.print(table)


@users_app.command("disable")
def disable(username: Username, user: UserOption = None) -> None:
    """Disable an account and revoke its API tokens."""
    services = _services()
    view = identity.disable_user(services, current_actor(services, user), username)
    console.print(_user_line(view), markup=False)


@users_app.command("enable")
def enable(username: Username, user: UserOption = None) -> None:
    """Re-enable an account and clear a lockout."""
    services = _services()
    view = identity.enable_user(services, current_actor(services, user), username)
    console.print(_user_line(view), markup=False)


@users_app.command("certify")
def certify(
    username: Username,
    until: Annotated[str, typer.Option(help="Training certified until (YYYY-MM-DD).")],
    user: UserOption = None,
) -> None:
    """Record training certification; searching and reviewing need it current."""
    services = _services()
    actor = current_actor(services, user)
    view = identity.certify_user(services, actor, username, parse_date(until))
    console.print(f"{view.username}: certified until {view.certified_until}", markup=False)


@users_app.command("reset-mfa")
def reset_mfa(username: Username, user: UserOption = None) -> None:
    """Replace a user's TOTP secret (lost device); prints the new secret once."""
    services = _services()
    show_enrolment(identity.reset_mfa(services, current_actor(services, user), username))


@token_app.command("issue")
def token_issue(
    username: Username,
    days: Annotated[int | None, typer.Option(help="Lifetime in days (default 30).")] = None,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    user: UserOption = None,
) -> None:
    """Issue an API token (use it as FACELEAD_TOKEN); printed once, only its hash is kept."""
    services = _services()
    actor = current_actor(services, user)
    issued = identity.issue_token(services, actor, username, days=days, label=label)
    console.print(
        f"token {issued.token_id} for {issued.username}, expires {issued.expires_at:%Y-%m-%d %H:%M}"
        " UTC; shown only once:",
        markup=False,
    )
    console.print(f"FACELEAD_TOKEN={issued.token}", markup=False, soft_wrap=True)


def _token_state(view: TokenView, now: dt.datetime) -> str:
    if view.revoked_at is not None:
        return "revoked"
    return "expired" if now >= view.expires_at else "active"


@token_app.command("list")
def token_list(username: Username, user: UserOption = None) -> None:
    """List a user's API tokens (never the secrets)."""
    services = _services()
    views = identity.list_tokens(services, current_actor(services, user), username)
    now = dt.datetime.now(dt.UTC)
    table = Table(title=f"API tokens of {username}")
    for column in ("id", "label", "state", "created", "expires", "last used"):
        table.add_column(column)
    for v in views:
        table.add_row(
            str(v.token_id),
            v.label or "—",
            _token_state(v, now),
            v.created_at.isoformat(timespec="minutes"),
            v.expires_at.isoformat(timespec="minutes"),
            v.last_used_at.isoformat(timespec="minutes") if v.last_used_at else "—",
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see token list).")],
    user: UserOption = None,
) -> None:
    """Revoke an API token at once."""
    services = _services()
    view = identity.revoke_token(services, current_actor(services, user), token_id)
    console.print(f"token {view.token_id} of {view.username} revoked", markup=False)


ADMIN_PASSWORD_ENV = "FACELEAD_ADMIN_PASSWORD"


def first_admin(services: Services, username: str, agency: str, agency_name: str) -> None:
    """``facelead init``'s last step: the first admin, only on an installation without users.

    Running init again (an upgrade) creates nobody and asks for nothing.
    """
    if not identity.needs_first_admin(services):
        console.print("Users exist already: no administrator created.")
        return
    password = read_secret(ADMIN_PASSWORD_ENV, f"Password for {username}", confirm=True)
    enrolment = identity.create_first_admin(
        services, username, password, agency=agency, agency_name=agency_name
    )
    console.print("First administrator created.")
    show_enrolment(enrolment)
