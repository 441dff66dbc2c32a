"""Cross-agency access through the CLI: the counterpart of tests/test_api_cross_agency.py.

tests/test_cli_roles.py runs every command as every role on made-up ids
(``NOPE-1`` for a case, ``999`` for a search). Here every command of that table
whose arguments name a case or a search runs again as each role of agency B, on
agency A's real objects (the same world the API test builds): a role allowed to
run it must get exactly one ``error [case_agency_mismatch]`` line (exit 2), any
other role ``error [forbidden]``; each refusal is audited under the command's
action, and nothing of agency A's changes. A command added to that table with a
case or search argument and no entry in ``TARGETS`` fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facelead.domain.access import Role
from tests.conftest import api_for, install
from tests.test_api_cross_agency import (
    AGENCY_B,
    B_CASE,
    CASE,
    CLOSED_CASE,
    EMPTY_CASE,
    FORBIDDEN,
    MISMATCH,
    OUTSIDERS,
    World,
    build_world,
    events_since,
    jpeg,
    last_seq,
    snapshot,
)
from tests.test_cli_roles import COMMANDS, Entry, Ran, invoke

CASE_ARG, SEARCH_ARG = "NOPE-1", "999"  # how tests/test_cli_roles.py names a case and a search

# command -> (agency A's case its case argument becomes, the state of its search argument)
TARGETS: dict[tuple[str, ...], tuple[str | None, str | None]] = {
    ("case", "approve-override"): (CASE, None),
    ("case", "close"): (EMPTY_CASE, None),
    ("case", "disclose"): (CASE, None),
    ("case", "outcome"): (CASE, "released"),
    ("case", "show"): (CASE, None),
    ("corroborate", "add"): (None, "released"),
    ("lead", "report"): (None, "verified"),
    ("review", "assign"): (None, "ready"),
    ("review", "dispose"): (None, "ready"),
    ("review", "features"): (None, "ready"),
    ("review", "resolve"): (None, "escalated"),
    ("review", "show"): (None, "ready"),
    ("review", "verify"): (None, "possible"),
    ("search",): (CASE, None),
}


def names_case_or_search(item: Entry) -> bool:
    return CASE_ARG in item.argv or SEARCH_ARG in item.argv


def test_every_command_naming_a_case_or_search_has_a_target() -> None:
    """A new command on a case or a search is checked across agencies as soon as it exists."""
    named = {path for path, item in COMMANDS.items() if names_case_or_search(item)}
    assert named, "tests/test_cli_roles.py no longer names cases NOPE-1 or searches 999"
    assert sorted(named - set(TARGETS)) == [], "commands with no cross-agency target"
    assert sorted(set(TARGETS) - named) == [], "targets for commands that no longer exist"


@pytest.fixture(scope="module")
def home_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, World]]:
    """The API test's world on a SQLite home the CLI can open."""
    root = tmp_path_factory.mktemp("cli-cross-agency")
    installed = install(root / "home")
    api = api_for(installed)
    with api.client:
        world = build_world(api)
    yield root, world
    installed.services.db.dispose()


def argv_for(root: Path, world: World, path: tuple[str, ...], case: str | None) -> list[str]:
    """The command's arguments from the roles table, naming agency A's objects."""
    out = root / "out" / "-".join(path)
    out.mkdir(parents=True, exist_ok=True)
    probe = root / "probe.jpg"
    probe.write_bytes(jpeg(220))
    state = TARGETS[path][1]
    swap = {CASE_ARG: case or "", SEARCH_ARG: str(world.searches[state]) if state else ""}
    fill = {"out": out, "probe": probe, "manifest": probe, "role": "x"}
    return [swap.get(arg, arg.format(**fill)) for arg in COMMANDS[path].argv]


def run_as(home: Path, world: World, name: str, argv: list[str]) -> Ran:
    return invoke(home, argv, FACELEAD_TOKEN=world.api.tokens[name])


def refuse_everyone(root: Path, world: World, path: tuple[str, ...], case: str | None) -> None:
    """Each role of agency B runs the command: refused with one line, audited, nothing changed."""
    item, services, home = COMMANDS[path], world.api.services, root / "home"
    argv = argv_for(root, world, path, case)
    before = snapshot(services)
    for role, name in OUTSIDERS.items():
        code = (MISMATCH if role.value in item.allowed else FORBIDDEN)[1]
        seq = last_seq(services)
        ran = run_as(home, world, name, argv)
        lines = [line for line in ran.err.splitlines() if line.strip()]
        who = (" ".join(argv), name, ran)
        assert ran.code == 2 and len(lines) == 1, who
        assert lines[0].startswith(f"error [{code}]: "), who
        recorded = [e for e in events_since(services, seq) if e[1] != "auth.login"]
        assert recorded == [(name, item.action, f"refused:{code}", AGENCY_B)], (who, recorded)
    assert snapshot(services) == before, f"{' '.join(argv)}: agency A's records changed"


def test_another_agency_is_refused_by_every_case_and_search_command(
    home_world: tuple[Path, World],
) -> None:
    """Commands naming a case also run on A's closed case: its state must not show."""
    root, world = home_world
    for path in sorted(TARGETS):
        case = TARGETS[path][0]
        refuse_everyone(root, world, path, case)
        if case is not None:
            refuse_everyone(root, world, path, CLOSED_CASE)


def test_review_queue_command_shows_only_own_agency(home_world: tuple[Path, World]) -> None:
    root, world = home_world
    for name, want, never in (("sam", CASE, B_CASE), (OUTSIDERS[Role.EXAMINER], B_CASE, CASE)):
        ran = run_as(root / "home", world, name, ["review", "queue"])
        assert ran.code == 0 and want in ran.out and never not in ran.out, (name, ran)
