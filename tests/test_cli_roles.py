"""Every CLI command × every role, walked from the Typer app itself.

For each command that authenticates, a user holding one role runs it with an API
token issued by the identity service (FACELEAD_TOKEN, as scripts do). A role the
table allows must not be refused by authorisation (the command may still fail
for other reasons: a made-up search id is ``not_found``); any other role must
exit 2 with exactly one line ``error [forbidden]: ...`` and leave an audited
``refused:forbidden`` event naming the action. Commands that run without an
actor (the installer, restore onto an empty home, the server, evaluations on
local files) are listed in ``NO_ACTOR`` with the reason.

A command added to the CLI without an entry in ``COMMANDS`` or ``NO_ACTOR`` (or, for
the rare command whose role check needs PostgreSQL, ``ELSEWHERE`` naming the test
that checks it) fails ``test_every_command_is_in_the_table``: whoever adds a command
says who may run it.

The commands run in-process through ``facelead.cli.main.run`` (the console
script's entry point, so the error line and exit status are the real ones) to
keep 6 roles × ~45 commands fast; tests/test_identity_cli.py runs the same entry
point as a subprocess.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from facelead.cli import main as cli_main
from facelead.services import identity as identity_service
from tests.conftest import USER_PASSWORD, install

FORBIDDEN = "forbidden"  # facelead.errors.PermissionDenied's code from services.uow.authorise
CERTIFIED = dt.date.today() + dt.timedelta(days=365)

# One account per role, each holding only that role, all with current training.
PEOPLE = {
    "investigator": "ivy",
    "examiner": "erin",
    "supervisor": "sam",
    "auditor": "audra",
    "admin": "adam",
    "records": "rita",
}
ROLES = tuple(PEOPLE)

INV, EXA, SUP, AUD, ADM, REC = ROLES


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


@dataclass(frozen=True)
class Entry:
    """How to run one command and who may.

    ``argv`` is a template: ``{out}`` is a fresh folder per run, ``{probe}`` a
    small file that is no photo, ``{manifest}`` an import manifest naming it,
    ``{role}`` the role of the caller (for names that must be new).
    ``action`` is the permission the refusal is audited under. ``per_item``:
    the command refuses each input separately on stdout (``refused [forbidden]
    FILE``, exit 0) instead of failing as a whole, as ``enroll`` does so that
    one bad photo never stops a batch.
    """

    argv: tuple[str, ...]
    allowed: frozenset[str]
    action: str
    per_item: bool = False


def entry(argv: str, allowed: frozenset[str], action: str, *, per_item: bool = False) -> Entry:
    return Entry(tuple(argv.split("|")), allowed, action, per_item)


# command path -> how to run it, who may, the audited action. Arguments are split on "|".
# Made-up ids (999, NOPE-1, ghost) keep allowed runs cheap: they get past authorisation
# and stop at not_found.
COMMANDS: dict[tuple[str, ...], Entry] = {
    ("audit", "checkpoint"): entry(
        "audit|checkpoint|--out|{out}/cp.jsonl", roles(AUD, ADM), "audit.checkpoint"
    ),
    ("audit", "export"): entry("audit|export|--out|{out}/x.jsonl", roles(AUD), "audit.export"),
    ("audit", "report"): entry(
        "audit|report|--from|2026-01-01|--to|2026-01-02|--format|json|--out|{out}/r.json",
        roles(AUD, SUP),
        "audit.read",
    ),
    ("audit", "verify"): entry("audit|verify", roles(AUD, SUP), "audit.verify"),
    ("backup",): entry("backup|{out}/backup", roles(ADM), "system.backup"),
    ("case", "approve-override"): entry(
        "case|approve-override|NOPE-1|--probe|" + "0" * 64 + "|--for-user|ivy"
        "|--justification|below-floor probe worth a try",
        roles(SUP),
        "search.quality_override",
    ),
    ("case", "close"): entry("case|close|NOPE-1", roles(INV, SUP), "case.close"),
    ("case", "disclose"): entry("case|disclose|NOPE-1|--out|{out}", roles(SUP), "case.disclose"),
    ("case", "open"): entry(
        "case|open|LA-{role}-1|--offence|robbery", roles(INV, SUP), "case.open"
    ),
    ("case", "outcome"): entry(
        "case|outcome|NOPE-1|--search|999|--outcome|excluded", roles(INV, SUP), "case.outcome"
    ),
    ("case", "show"): entry("case|show|NOPE-1", roles(INV, EXA, SUP, AUD), "case.read"),
    ("corroborate", "add"): entry(
        "corroborate|add|999|--type|vehicle-information|--description|plate seen on camera",
        roles(INV),
        "corroboration.add",
    ),
    ("doctor",): entry("doctor", roles(REC, ADM), "gallery.purge"),
    ("enroll",): entry(
        "enroll|{probe}|--agency|LACRIS", roles(REC, ADM), "gallery.enrol", per_item=True
    ),
    ("gallery", "expunge"): entry(
        "gallery|expunge|ghost|--order|ORD-1", roles(REC), "gallery.seal"
    ),
    ("gallery", "purge"): entry(
        "gallery|purge|ghost|--order|ORD-1", roles(REC, ADM), "gallery.purge"
    ),
    ("gallery", "reindex"): entry(
        "gallery|reindex|--model|fusion-v2|--workers|1", roles(REC, ADM), "gallery.reindex"
    ),
    ("gallery", "removed"): entry("gallery|removed|ghost", roles(AUD, SUP), "audit.read"),
    ("gallery", "seal"): entry("gallery|seal|ghost|--order|ORD-1", roles(REC), "gallery.seal"),
    ("gallery", "show"): entry("gallery|show|ghost", roles(REC, ADM, SUP, AUD), "gallery.read"),
    ("gallery", "stats"): entry("gallery|stats", roles(REC, ADM, SUP, AUD), "gallery.read"),
    ("gallery", "sweep"): entry("gallery|sweep", roles(REC, ADM), "gallery.purge"),
    ("import",): entry("import|{manifest}|--workers|1", roles(REC, ADM), "gallery.enrol"),
    ("keys", "retire-image-keys"): entry("keys|retire-image-keys", roles(ADM), "system.key_rotate"),
    ("keys", "rotate-image-key"): entry("keys|rotate-image-key", roles(ADM), "system.key_rotate"),
    ("lead", "report"): entry("lead|report|999|--out|{out}", roles(INV, EXA, SUP), "lead.report"),
    ("report", "transparency"): entry(
        "report|transparency|--from|2026-01|--to|2026-01|--format|csv|--out|{out}/t.csv",
        roles(AUD, SUP),
        "report.transparency",
    ),
    ("retention", "run"): entry("retention|run", roles(REC, ADM), "retention.run"),
    ("review", "assign"): entry(
        "review|assign|999|--examiner|erin", roles(EXA, SUP), "review.assign"
    ),
    ("review", "dispose"): entry(
        "review|dispose|999|--others|exclude", roles(EXA), "review.dispose"
    ),
    ("review", "features"): entry(
        "review|features|999|--compared|eyes,nose,mouth,ears", roles(EXA), "review.dispose"
    ),
    ("review", "queue"): entry("review|queue", roles(EXA, SUP), "review.queue"),
    ("review", "resolve"): entry(
        "review|resolve|999|--decision|uphold|--notes|verifier was right",
        roles(SUP),
        "review.resolve",
    ),
    ("review", "show"): entry("review|show|999", roles(EXA), "candidates.view"),
    ("review", "verify"): entry("review|verify|999|--set|S1=exclude", roles(EXA), "review.verify"),
    ("search",): entry(
        "search|{probe}|--case|NOPE-1|--purpose|criminal-investigation|--justification"
        "|Robbery suspect still from store CCTV|--source|cctv-still|--obtained-by|manager"
        "|--captured-by|store CCTV",
        roles(INV),
        "search.submit",
    ),
    ("user", "add"): entry(
        "user|add|new-{role}|--role|examiner|--agency|LACRIS", roles(ADM), "user.manage"
    ),
    ("user", "certify"): entry(
        "user|certify|target|--until|" + CERTIFIED.isoformat(), roles(ADM), "training.certify"
    ),
    ("user", "disable"): entry("user|disable|target", roles(ADM), "user.manage"),
    ("user", "enable"): entry("user|enable|target", roles(ADM), "user.manage"),
    ("user", "list"): entry("user|list", roles(ADM, AUD, SUP), "user.read"),
    ("user", "reset-mfa"): entry("user|reset-mfa|target", roles(ADM), "user.manage"),
    ("user", "token", "issue"): entry(
        "user|token|issue|target|--days|1", roles(ADM), "user.manage"
    ),
    ("user", "token", "list"): entry("user|token|list|target", roles(ADM, AUD, SUP), "user.read"),
    ("user", "token", "revoke"): entry("user|token|revoke|999999", roles(ADM), "user.manage"),
}

# Commands with no --user and no token: who runs them is the operating-system account.
NO_ACTOR: dict[tuple[str, ...], str] = {
    ("init",): "the installer: creates the schema and the first admin, nobody to log in yet",
    ("serve",): "starts the server; each request authenticates itself",
    ("eval", "centre"): "fits a template centre on a labelled benchmark; reads no FaceLead data",
    ("eval", "demographics"): "differentials on a labelled benchmark; reads no FaceLead data",
    ("eval", "folder"): "accuracy on the operator's own labelled files; reads no FaceLead data",
    ("eval", "lfw"): "accuracy on a public benchmark; reads no FaceLead data",
    ("eval", "report"): "re-renders a saved evaluation; reads no FaceLead data",
}


# Commands whose role check needs a setting this SQLite matrix cannot give; the test named
# runs it instead.
ELSEWHERE: dict[tuple[str, ...], str] = {
    ("restore",): "authenticates only with --replace, which is PostgreSQL-only and replaces the "
    "live deployment: tests/test_backup_postgres.py (records refused, admin allowed, audited)",
}


def command_paths() -> dict[tuple[str, ...], list[str]]:
    """Every leaf command of the Typer app and the names of its parameters."""
    found: dict[tuple[str, ...], list[str]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            found[path] = [p.name for p in command.params]
            return
        for name, child in children.items():
            walk(child, (*path, name))

    walk(typer.main.get_command(cli_main.app), ())
    return found


def test_every_command_is_in_the_table() -> None:
    commands = command_paths()
    listed = {*COMMANDS, *NO_ACTOR, *ELSEWHERE}
    missing = sorted(" ".join(p) for p in commands if p not in listed)
    assert not missing, f"commands without an entry in COMMANDS or NO_ACTOR: {missing}"
    stale = sorted(" ".join(p) for p in listed if p not in commands)
    assert not stale, f"table entries for commands that no longer exist: {stale}"
    for path, params in commands.items():
        if path in NO_ACTOR:
            assert "user" not in params, f"{path} takes --user: give it a COMMANDS entry"
        elif path in COMMANDS:
            assert "user" in params, f"{path} has no --user: it cannot be authorised"
    for path, item in COMMANDS.items():
        assert item.allowed and item.allowed <= set(ROLES), path
        assert item.allowed != set(ROLES), f"{path}: every role allowed, nothing to refuse"


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


AUTH_ENV = ("FACELEAD_USER", "FACELEAD_PASSWORD", "FACELEAD_TOTP", "FACELEAD_TOKEN")


def invoke(home: Path, argv: list[str], **env: str) -> Ran:
    """``facelead ARGV`` through the console-script entry point, in this process.

    The environment is the caller's minus every credential and database setting,
    plus ``env``; standard input is not a terminal, as in a script.
    """
    clean: dict[str, str | None] = {
        "FACELEAD_HOME": str(home),
        "FACELEAD_DATABASE_URL": None,
        **dict.fromkeys(AUTH_ENV),
        **env,
    }
    saved = sys.argv
    with CliRunner().isolation(env=clean) as (out, err, _):
        sys.argv = ["facelead", *argv]
        try:
            cli_main.run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.argv = saved
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


@dataclass
class World:
    home: Path
    tokens: dict[str, str]  # role -> API token of PEOPLE[role]
    probe: Path
    runs: int = 0

    def run(self, argv: list[str], **env: str) -> Ran:
        return invoke(self.home, argv, FACELEAD_NEW_PASSWORD=USER_PASSWORD, **env)

    def run_as(self, role: str, item: Entry) -> Ran:
        self.runs += 1
        out = self.home.parent / "out" / f"{self.runs}"
        out.mkdir(parents=True)
        fill = {"out": out, "probe": self.probe, "manifest": self.probe.with_suffix(".csv")}
        argv = [a.format(**fill, role=role) for a in item.argv]
        return self.run(argv, FACELEAD_TOKEN=self.tokens[role])

    def refusals(self, username: str, action: str) -> int:
        """Audited ``refused:forbidden`` events of ``username`` for ``action``."""
        conn = sqlite3.connect(f"file:{self.home / 'facelead.db'}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT COUNT(*) FROM audit_events WHERE actor = ? AND action = ? AND outcome = ?",
                (username, action, f"refused:{FORBIDDEN}"),
            ).fetchone()
        finally:
            conn.close()
        return int(row[0])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A SQLite home with one certified user per role (and a target for user commands)."""
    root = tmp_path_factory.mktemp("cli-roles")
    installed = install(root / "home")
    services = installed.services
    for role, name in PEOPLE.items():
        installed.add(name, role, certified_until=CERTIFIED)
    installed.add("target", "examiner", certified_until=CERTIFIED)
    tokens = {
        role: identity_service.issue_token(services, installed.admin, name, days=1).token
        for role, name in PEOPLE.items()
    }
    services.db.dispose()
    probe = root / "probe.jpg"
    probe.write_bytes(b"not really a photo")
    manifest = "path,subject_id,booking_number,booking_date,agency\n"
    probe.with_suffix(".csv").write_text(manifest + "probe.jpg,S1,B1,2020-01-01,LACRIS\n")
    yield World(root / "home", tokens, probe)


def assert_refused(world: World, path: tuple[str, ...], role: str, ran: Ran, before: int) -> None:
    item = COMMANDS[path]
    who = f"{' '.join(path)} as {role}"
    if item.per_item:
        assert ran.code == 0 and f"refused [{FORBIDDEN}]" in ran.out, (who, ran)
    else:
        lines = [line for line in ran.err.splitlines() if line.strip()]
        assert ran.code == 2, (who, ran)
        assert len(lines) == 1 and lines[0].startswith(f"error [{FORBIDDEN}]: "), (who, ran)
    after = world.refusals(PEOPLE[role], item.action)
    assert after == before + 1, f"{who}: refusal not audited under {item.action}"


def assert_allowed(path: tuple[str, ...], role: str, ran: Ran) -> None:
    who = f"{' '.join(path)} as {role}"
    assert ran.code in (0, 1, 2), (who, ran)
    refused = (f"error [{FORBIDDEN}]", "error [training_expired]", f"refused [{FORBIDDEN}]")
    assert not any(mark in ran.err + ran.out for mark in refused), (who, ran)
    if ran.code == 2:  # failed for a reason other than authorisation: one readable line
        lines = [line for line in ran.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error ["), (who, ran)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_command_refuses_every_role_it_does_not_allow(world: World, path: tuple[str, ...]) -> None:
    item = COMMANDS[path]
    for role in ROLES:
        before = world.refusals(PEOPLE[role], item.action)
        ran = world.run_as(role, item)
        if role in item.allowed:
            assert_allowed(path, role, ran)
            assert world.refusals(PEOPLE[role], item.action) == before, (path, role)
        else:
            assert_refused(world, path, role, ran, before)


@pytest.mark.parametrize("path", sorted(NO_ACTOR), ids=" ".join)
def test_commands_without_an_actor_document_themselves(world: World, path: tuple[str, ...]) -> None:
    ran = world.run([*path, "--help"])
    assert ran.code == 0 and "Usage" in ran.out, ran


def test_without_a_token_an_actor_command_is_unauthenticated(world: World) -> None:
    """The table's commands really authenticate: no token, no --user, one refusal line."""
    for path in (("gallery", "stats"), ("review", "queue"), ("user", "list")):
        ran = world.run([*path])
        lines = [line for line in ran.err.splitlines() if line.strip()]
        assert ran.code == 2 and lines == [lines[0]], ran
        assert lines[0].startswith("error [unauthenticated]: "), ran
