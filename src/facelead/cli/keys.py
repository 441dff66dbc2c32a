"""``facelead keys ...``: rotate the image encryption key and retire old keys (admins).

Thin: authenticate, call ``services.keys``, render. A new key supplied by the
operator comes from FACELEAD_NEW_IMAGE_KEY, never from an option (ps, shell
history).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from facelead.cli.auth import UserOption, current_actor
from facelead.cli.output import console
from facelead.services.context import Services
from facelead.services.keys import RotationReport, retire_image_keys, rotate_image_key

NEW_IMAGE_KEY_ENV = "FACELEAD_NEW_IMAGE_KEY"

keys_app = typer.Typer(
    help="Encryption keys: rotate the image key, retire old ones (admins).",
    no_args_is_help=True,
)


def _services() -> Services:
    services = Services()
    services.initialise()
    return services


@keys_app.command("rotate-image-key")
def rotate(
    limit: Annotated[
        int | None,
        typer.Option(
            help="Re-seal at most this many files in this run; run again to continue "
            "(spreads the work over maintenance windows)."
        ),
    ] = None,
    user: UserOption = None,
) -> None:
    """Re-seal every stored image under a new key; a rerun continues an interrupted rotation.

    The old key stays in the keyring (every file readable throughout) until
    `facelead keys retire-image-keys`. With FACELEAD_IMAGE_KEY set, pass the new
    key in FACELEAD_NEW_IMAGE_KEY, then move every process to it and run this
    command again to finish. Exit 1 when a file could not be opened.
    """
    services = _services()
    actor = current_actor(services, user)
    new_key = os.environ.get(NEW_IMAGE_KEY_ENV) or None
    report = rotate_image_key(services, actor, new_key, limit=limit)
    _print_rotation(report)
    if report.failed:
        raise typer.Exit(code=1)


def _print_rotation(report: RotationReport) -> None:
    verb = "continued" if report.resumed else "started"
    console.print(
        f"image key rotation to {report.key_id} {verb}: {report.resealed} files re-sealed, "
        f"{report.unchanged} already under the new key, {report.remaining} remaining",
        markup=False,
    )
    for line in report.failed:
        console.print(f"FAILED {line} (see `facelead doctor`)", markup=False)
    if report.remaining and not report.failed:
        console.print("Run the command again to continue.")
    if report.awaiting_environment:
        console.print(
            "FACELEAD_IMAGE_KEY still holds the old key. Set FACELEAD_IMAGE_KEY to the new "
            f"key (the value given in {NEW_IMAGE_KEY_ENV}) for every FaceLead process, restart "
            "them, then run `facelead keys rotate-image-key` again to finish.",
            markup=False,
            soft_wrap=True,
        )
    elif report.complete:
        console.print(
            "Rotation complete. Old keys kept until `facelead keys retire-image-keys`: "
            + (", ".join(report.retired) or "none"),
            markup=False,
            soft_wrap=True,
        )


@keys_app.command("retire-image-keys")
def retire(user: UserOption = None) -> None:
    """Delete old image keys once no stored file is sealed under them; refused otherwise."""
    services = _services()
    actor = current_actor(services, user)
    report = retire_image_keys(services, actor)
    removed = ", ".join(report.removed) or "none"
    console.print(
        f"{report.files} stored files checked; image keys removed: {removed}", markup=False
    )
