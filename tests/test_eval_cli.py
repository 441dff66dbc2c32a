"""Help text of every `facelead eval` command and option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facelead.cli.main import app

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COMMANDS = {
    "lfw": (
        "--data",
        "--json",
        "--cache",
        "--report",
        "--calibration",
        "--model",
        "--compare",
        "--select",
        "--no-select",
        "--workers",
        "--pool",
    ),
    "folder": ("CSV", "--distractors", "--json", "--cache", "--model", "--workers"),
    "report": ("JSON", "--out"),
    "demographics": (
        "--data",
        "--model",
        "--fmr",
        "--json",
        "--report",
        "--resamples",
        "--pool",
        "--cache",
        "--workers",
    ),
}


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.output)


def test_eval_group_lists_its_commands() -> None:
    text = _help("eval")
    for command in COMMANDS:
        assert command in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_eval_option_is_documented(command: str) -> None:
    text = _help("eval", command)
    for option in COMMANDS[command]:
        assert option in text, f"{option} missing from `facelead eval {command} --help`"
    assert "Usage:" in text


def test_report_command_refuses_a_missing_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "report", str(tmp_path / "none.json")])
    assert result.exit_code == 2


def test_lfw_help_says_what_it_measures() -> None:
    text = _help("eval", "lfw")
    assert "1:1" in text and "1:N" in text
    assert "../shared/data/lfw" in text
