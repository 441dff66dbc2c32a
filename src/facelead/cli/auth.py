"""Who is running this command.

Placeholder: until user accounts land (issue 3) every command runs as the
installer (SYSTEM). The identity work replaces ``current_actor`` with
password/TOTP or FACELEAD_TOKEN authentication of ``--user``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from facelead.domain.access import SYSTEM, Actor
from facelead.services.context import Services

UserOption = Annotated[
    str | None,
    typer.Option("--user", envvar="FACELEAD_USER", help="Act as this user (asks for password)."),
]


def current_actor(services: Services, user: str | None) -> Actor:
    """The authenticated actor for this command."""
    del services, user
    return SYSTEM
