"""The facelead command: help everywhere, clean one-line errors, real runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from facelead.cli.main import app

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


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACELEAD_HOME": str(home)}
    return subprocess.run(
        [str(FACELEAD), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_bad_probe_is_one_line_and_exit_2(tmp_path: Path) -> None:
    probe = tmp_path / "note.jpg"
    probe.write_text("this is a text file named .jpg")
    result = run(tmp_path / "home", "search", str(probe))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "[unsupported_format]" in lines[0]


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = run(tmp_path / "home", "enroll", str(tmp_path / "absent.jpg"))
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.models
def test_enrol_and_search_through_the_cli(tmp_path: Path, meds_dir: Path) -> None:
    home = tmp_path / "home"
    photos = [str(meds_dir / f"S001-0{n}-t10_01.jpg") for n in (1, 2)]
    enrolled = run(home, "enroll", "--subject", "S001", *photos)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "enrolled: 2" in enrolled.stdout
    other = run(home, "enroll", "--subject", "S002", str(meds_dir / "S002-01-t10_01.jpg"))
    assert other.returncode == 0, other.stderr
    found = run(home, "search", str(meds_dir / "S001-03-t10_01.jpg"), "--top", "2")
    assert found.returncode == 0, found.stderr
    assert "Investigative lead only" in found.stdout
    assert "S001" in found.stdout.split("│ 1 ")[1].splitlines()[0]
    stats = run(home, "gallery", "stats")
    assert '"photos": 3' in stats.stdout
