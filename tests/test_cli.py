"""The facelead command: help everywhere, clean one-line errors, real runs."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from facelead.cli.main import app
from facelead.domain.access import SYSTEM
from facelead.services.identity import certify_user
from tests.conftest import make_services, provision_token

FACELEAD = Path(sys.executable).parent / "facelead"


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Walk the command tree (Typer ships its own click, so duck-type groups)."""
    found = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if hasattr(command, "commands"):
            found.extend(_commands(command, f"{prefix}{name} "))
    return found


def test_every_command_has_help_text() -> None:
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert {"init", "enroll", "search", "gallery stats"} <= {name for name, _ in commands}
    for name, command in commands:
        assert (command.help or "").strip(), f"facelead {name} has no help text"
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option":
                assert (param.help or "").strip(), f"facelead {name} {param.name} has no help"


def run(home: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACELEAD_HOME": str(home)}
    env.pop("FACELEAD_TOKEN", None)
    if token is not None:
        env["FACELEAD_TOKEN"] = token
    return subprocess.run(
        [str(FACELEAD), *args], capture_output=True, text=True, env=env, timeout=300
    )


SEARCH_ARGS = (
    "--purpose",
    "criminal-investigation",
    "--justification",
    "Robbery at the corner shop, suspect filmed by the shop camera",
    "--source",
    "cctv-still",
    "--obtained-by",
    "DVR export by Det. Ruiz",
    "--captured-by",
    "shop CCTV",
    "--edit",
    "crop",
)


def certified_token(home: Path, username: str, *roles: str) -> str:
    """An API token of a new user whose training is current (searching needs it)."""
    token = provision_token(home, username, *roles)
    services = make_services(home)
    certify_user(services, SYSTEM, username, dt.date.today() + dt.timedelta(days=30))
    services.db.dispose()
    return token


def one_error_line(result: subprocess.CompletedProcess[str], code: str) -> None:
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"[{code}]" in lines[0], result.stderr


def test_bad_probe_is_one_line_and_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    probe = tmp_path / "note.jpg"
    probe.write_text("this is a text file named .jpg")
    ivy = certified_token(home, "ivy", "investigator")
    opened = run(home, "case", "open", "C-1", "--offence", "robbery", token=ivy)
    assert opened.returncode == 0, opened.stderr
    assert "case C-1: open, robbery" in opened.stdout
    result = run(home, "search", str(probe), "--case", "C-1", *SEARCH_ARGS, token=ivy)
    one_error_line(result, "unsupported_format")


def test_search_policy_refusals_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(b"policy refuses this request before the image is decoded")
    ivy = certified_token(home, "ivy", "investigator")
    run(home, "case", "open", "C-1", "--offence", "robbery", token=ivy)

    def search(**changes: str) -> subprocess.CompletedProcess[str]:
        options = dict(zip(SEARCH_ARGS[::2], SEARCH_ARGS[1::2], strict=True))
        options.update({f"--{k.replace('_', '-')}": v for k, v in changes.items()})
        args = [item for pair in options.items() for item in pair]
        return run(home, "search", str(probe), "--case", "C-1", *args, token=ivy)

    one_error_line(search(source="body-worn-camera"), "probe_source_refused")
    one_error_line(
        search(justification="Identify the protesters at the rally"), "prohibited_purpose"
    )
    one_error_line(search(purpose="curiosity"), "purpose_not_permitted")
    one_error_line(search(edit="feature-paste"), "probe_edit_refused")
    closed = run(home, "case", "close", "C-1", token=ivy)
    assert closed.returncode == 0 and "case C-1: closed" in closed.stdout, closed.stderr
    one_error_line(search(), "case_closed")
    anonymous = run(home, "case", "show", "C-1")
    one_error_line(anonymous, "unauthenticated")


@pytest.mark.parametrize(
    "argv",
    [
        ["gallery", "seal", "--bogus"],  # an unknown option
        ["nosuch"],  # an unknown command
        ["retention", "run", "--at"],  # an option without its value
        ["eval", "lfw", "--workers", "0"],  # a value out of range
        ["retention", "run", "--at", "2026-02-30"],  # a date that does not exist
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(tmp_path: Path, argv: list[str]) -> None:
    """Click's boxed usage report would be several lines: the CLI makes it one."""
    result = run(tmp_path / "home", *argv)
    code = "invalid_date" if argv[-1] == "2026-02-30" else "usage"
    one_error_line(result, code)
    assert "--help" in result.stderr or code != "usage"


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = run(tmp_path / "home", "enroll", str(tmp_path / "absent.jpg"))
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.models
def test_enrol_and_search_through_the_cli(tmp_path: Path, meds_dir: Path) -> None:
    home = tmp_path / "home"
    rita = provision_token(home, "rita", "records")
    photos = [str(meds_dir / f"S001-0{n}-t10_01.jpg") for n in (1, 2)]
    enrolled = run(home, "enroll", "--subject", "S001", *photos, token=rita)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "enrolled: 2" in enrolled.stdout
    other = run(
        home, "enroll", "--subject", "S002", str(meds_dir / "S002-01-t10_01.jpg"), token=rita
    )
    assert other.returncode == 0, other.stderr
    ivy = certified_token(home, "ivy", "investigator")
    assert run(home, "case", "open", "C-7", "--offence", "theft", token=ivy).returncode == 0
    probe = str(meds_dir / "S001-03-t10_01.jpg")
    found = run(home, "search", probe, "--case", "C-7", *SEARCH_ARGS, "--top", "2", token=ivy)
    assert found.returncode == 0, found.stderr
    assert "search 1: candidates_ready (case C-7" in found.stdout
    assert "Investigative lead only" in found.stdout
    assert "S001" not in found.stdout and "S002" not in found.stdout  # never to the requester
    shown = run(home, "case", "show", "C-7", token=ivy)
    assert "search 1: candidates_ready" in shown.stdout and "S001" not in shown.stdout
    stats = run(home, "gallery", "stats", token=rita)
    assert '"photos": 3' in stats.stdout
