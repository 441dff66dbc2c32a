"""Who is running this command: ``--user`` with password + TOTP, or FACELEAD_TOKEN.

Every command that touches data authenticates first; there is no anonymous
or installer mode on the command line. Scripts set FACELEAD_PASSWORD and
FACELEAD_TOTP, or better FACELEAD_TOKEN (a TOTP code is accepted only once,
so consecutive logins within one 30-second step need a token).
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
from typing import Annotated

import typer

from facelead.domain.access import Actor
from facelead.errors import AuthenticationError, InputError
from facelead.services.context import Services
from facelead.services.identity import authenticate_token, login

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="FACELEAD_USER",
        help="Act as this user (asks for password and TOTP code; or set FACELEAD_TOKEN).",
    ),
]

TOKEN_ENV = "FACELEAD_TOKEN"
PASSWORD_ENV = "FACELEAD_PASSWORD"
TOTP_ENV = "FACELEAD_TOTP"


def client_address() -> str:
    """What the audit log records as the origin of a command-line action."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{who}@{socket.gethostname()}"


def read_secret(env: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from the environment, else a hidden prompt; never from argv (ps, history)."""
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise InputError(f"{prompt}: set {env} or run in a terminal", code="secret_required")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def _optional_code() -> str | None:
    """The TOTP code; absent in a script means the login is refused as ``mfa_required``."""
    value = os.environ.get(TOTP_ENV)
    if value or not sys.stdin.isatty():
        return value
    return str(typer.prompt("TOTP code"))


def current_actor(services: Services, user: str | None) -> Actor:
    """The authenticated actor for this command (its login is audited)."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        actor = authenticate_token(services, token, client_address())
        if user and user.strip().lower() != actor.username:
            raise AuthenticationError(
                f"{TOKEN_ENV} does not belong to --user {user}", code="token_invalid"
            )
        return actor
    if not user:
        raise AuthenticationError(
            f"say who you are: --user NAME (or FACELEAD_USER), or set {TOKEN_ENV}",
            code="unauthenticated",
        )
    password = read_secret(PASSWORD_ENV, f"Password for {user}")
    return login(services, user, password, _optional_code(), client_address())
