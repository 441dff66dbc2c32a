"""`make demo`: enrol real booking photos, then walk one search through the whole workflow.

Every step is a `facelead` command run by a person with their own account:
an investigator searches, an examiner reviews blind, a second examiner
verifies blind, the investigator gets the lead report, records independent
corroboration and the outcome, a supervisor writes the disclosure package
and an auditor verifies the audit log. Forbidden shortcuts are tried on the
way and refused with one line each.

Data: FACELEAD_DEMO_DATA (a folder of photos), else ../shared/data/meds (NIST
MEDS-II mugshots) plus LFW distractors from ../shared/data/lfw.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
HOME = Path(os.environ.get("FACELEAD_HOME", ROOT / "facelead-data" / "demo"))
MEDS_NAME = re.compile(r"S(\d+)-(\d+)-t10_(\d+)\.jpg$")
BIN = Path(sys.executable).parent


AUTH_ENV = ("FACELEAD_USER", "FACELEAD_PASSWORD", "FACELEAD_TOTP", "FACELEAD_TOKEN")
AS_USER: dict[str, str] = {}  # credentials of the user the demo acts as (set_up_users)
AS_ADMIN: dict[str, str] = {}  # the demo admin's token, for adding more demo users


def facelead(
    *args: str,
    capture: bool = False,
    who: str = "",
    creds: Mapping[str, str] | None = None,
    **env: str,
) -> str:
    """Run one command as the current demo user (or with ``creds``, another's token);
    ``capture`` also returns its output."""
    print(f"\n{f'[{who}] ' if who else ''}$ facelead {' '.join(args)}", flush=True)
    base = {k: v for k, v in os.environ.items() if k not in AUTH_ENV}
    result = subprocess.run(
        [str(BIN / "facelead"), *args],
        check=False,
        capture_output=capture,
        text=True,
        env={**base, "FACELEAD_HOME": str(HOME), **AS_USER, **(creds or {}), **env},
    )
    if capture:
        print(result.stdout, end="", flush=True)
        print(result.stderr, end="", file=sys.stderr, flush=True)
    return result.stdout or ""


def _printed(pattern: str, output: str) -> str:
    match = re.search(pattern, output, re.M)
    if match is None:
        raise SystemExit(f"demo set-up failed: no {pattern!r} in the output above")
    return match[1]


def set_up_users() -> None:
    """Install with an admin, who adds a records-bureau clerk; the demo then acts as the clerk.

    The admin logs in once with password + TOTP, as a person would, and issues
    itself a one-day API token for the next steps (a TOTP code is accepted only
    once, so scripts use tokens).
    """
    import pyotp

    admin_password = os.environ.get("FACELEAD_ADMIN_PASSWORD", "demo installer passphrase")
    installed = facelead(
        "init", "--agency", "DEMO", "--agency-name", "FaceLead demo agency",
        capture=True, FACELEAD_ADMIN_PASSWORD=admin_password,
    )  # fmt: skip
    code = pyotp.TOTP(_printed(r"^TOTP secret: (\S+)$", installed)).now()
    issued = facelead(
        "user", "token", "issue", "admin", "--days", "1", "--label", "demo",
        capture=True, FACELEAD_USER="admin", FACELEAD_PASSWORD=admin_password, FACELEAD_TOTP=code,
    )  # fmt: skip
    admin = AS_ADMIN
    admin["FACELEAD_TOKEN"] = _printed(r"^FACELEAD_TOKEN=(\S+)$", issued)
    facelead(
        "user", "add", "clerk", "--role", "records", "--agency", "DEMO",
        FACELEAD_NEW_PASSWORD="demo records bureau passphrase", creds=admin,
    )  # fmt: skip
    issued = facelead("user", "token", "issue", "clerk", "--days", "1", capture=True, creds=admin)
    AS_USER["FACELEAD_TOKEN"] = _printed(r"^FACELEAD_TOKEN=(\S+)$", issued)


def meds_split(meds: Path) -> tuple[list[tuple[Path, str, str]], list[tuple[Path, str]]]:
    """Gallery rows (path, subject, booking) and held-out probes (path, subject).

    For each subject with several bookings, the frontal photo of the last
    booking is held out as the probe and never enrolled.
    """
    by_subject: dict[str, list[tuple[Path, str, str]]] = defaultdict(list)
    for path in sorted(meds.glob("*.jpg")):
        match = MEDS_NAME.search(path.name)
        if match:
            subject, booking, record = match.groups()
            by_subject[f"S{subject}"].append((path, f"S{subject}-{booking}", record))
    gallery, probes = [], []
    for subject, rows in by_subject.items():
        bookings = sorted({booking for _, booking, _ in rows})
        held = bookings[-1] if len(bookings) > 1 else None
        for path, booking, record in rows:
            if booking == held and record == "01":
                probes.append((path, subject))
            elif booking != held:
                gallery.append((path, subject, booking))
    return gallery, probes


def write_manifest(rows: list[tuple[Path, str, str]], agency: str) -> Path:
    manifest = HOME / f"manifest-{agency.lower()}.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject_id", "booking_number", "agency"])
        for path, subject, booking in rows:
            writer.writerow([str(path), subject, booking, agency])
    return manifest


def lfw_distractors(lfw: Path, count: int) -> list[tuple[Path, str, str]]:
    people = sorted(p for p in (lfw / "images").iterdir() if p.is_dir())
    singles = [p for p in people if len(list(p.glob("*.jpg"))) == 1][:count]
    return [(next(p.glob("*.jpg")), f"LFW-{p.name}", f"LFW-{p.name}-1") for p in singles]


def main() -> int:
    custom = os.environ.get("FACELEAD_DEMO_DATA")
    meds, lfw = SHARED / "meds", SHARED / "lfw"
    if not custom and not meds.is_dir():
        print("No demo photos: set FACELEAD_DEMO_DATA=/path/to/photos and run make demo again.")
        return 1
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    set_up_users()
    if custom:
        facelead("enroll", custom)
        facelead("gallery", "stats")
        return 0
    gallery, probes = meds_split(meds)
    facelead(
        "enroll",
        "--manifest",
        str(write_manifest(gallery, "MEDS")),
        *[str(p) for p, _, _ in gallery],
    )
    if lfw.is_dir():
        count = int(os.environ.get("FACELEAD_DEMO_DISTRACTORS", "200"))
        rows = lfw_distractors(lfw, count)
        facelead(
            "enroll", "--manifest", str(write_manifest(rows, "LFW")), *[str(p) for p, _, _ in rows]
        )
    facelead("gallery", "stats")
    demo_workflow(probes[0])
    return summary(probes)


PEOPLE: dict[str, dict[str, str]] = {}  # demo users' API tokens, by username
CASE = "DEMO-0001"


def add_people() -> None:
    """The admin creates one account per role, certifies it and issues it a token."""
    import datetime as dt

    until = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    for name, role in [("ivy", "investigator"), ("erin", "examiner"), ("ezra", "examiner"),
                       ("sam", "supervisor"), ("audra", "auditor")]:  # fmt: skip
        facelead(
            "user", "add", name, "--role", role, "--agency", "DEMO", capture=True,
            FACELEAD_NEW_PASSWORD=f"demo passphrase of the {role}", creds=AS_ADMIN,
        )  # fmt: skip
        facelead("user", "certify", name, "--until", until, creds=AS_ADMIN)
        issued = facelead(
            "user", "token", "issue", name, "--days", "1", capture=True, creds=AS_ADMIN
        )
        PEOPLE[name] = {"FACELEAD_TOKEN": _printed(r"^FACELEAD_TOKEN=(\S+)$", issued)}


def as_(who: str, *args: str) -> str:
    return facelead(*args, capture=True, who=who, creds=PEOPLE[who])


def demo_workflow(probe: tuple[Path, str]) -> None:
    """One held-out MEDS probe from submission to a corroborated, disclosed outcome.

    The examiners' decisions are scripted (the demo knows who the probe
    shows); everything else, refusals included, is the real system.
    """
    path, subject = probe
    add_people()
    print(f"\n== Probe {path.name}: a later booking of {subject}, never enrolled ==")
    as_("ivy", "case", "open", CASE, "--offence", "robbery")
    searched = as_(
        "ivy", "search", str(path), "--case", CASE, "--purpose", "criminal-investigation",
        "--justification", "Robbery suspect photographed at a later booking (demo)",
        "--source", "digital-photo", "--obtained-by", "held-out MEDS booking photo",
        "--captured-by", "records bureau", "--top", "5",
    )  # fmt: skip
    sid = _printed(r"^search (\d+):", searched)
    as_("ivy", "review", "show", sid)  # refused: the requester never sees candidates
    as_("sam", "review", "queue")
    as_("sam", "review", "assign", sid, "--examiner", "erin")
    as_("erin", "review", "show", sid)  # blind: shuffled, no ranks, no scores
    as_("erin", "review", "features", sid, "--compared",
        "face-shape,hairline,eyebrows,eyes,nose,mouth,chin", "--not-visible", "ears")  # fmt: skip
    reason = f"{subject}=possible-lead:eyebrow shape, nose bridge and chin agree"
    as_("erin", "review", "dispose", sid, "--set", reason, "--others", "exclude")
    as_("erin", "review", "show", sid)  # after the decision, ranks and scores appear
    as_("ivy", "lead", "report", sid)  # refused: not verified yet
    as_("erin", "review", "verify", sid, "--set", reason)  # refused: one person, one review
    as_("sam", "review", "assign", sid, "--examiner", "ezra", "--role", "verifier")
    as_("ezra", "review", "show", sid)  # only the lead; none of erin's notes
    as_("ezra", "review", "features", sid, "--compared", "eyes,nose,mouth,chin,eyebrows")
    as_("ezra", "review", "verify", sid, "--set", f"{subject}=possible-lead:independently agree")
    as_("ivy", "lead", "report", sid, "--out", str(HOME / "reports"))
    as_("ivy", "corroborate", "add", sid, "--type", "photo-lineup",
        "--description", "Victim picked him out of six photos")  # fmt: skip
    as_("ivy", "corroborate", "add", sid, "--type", "witness-statement", "--contradicts",
        "--description", "Clerk recalls a neck tattoo; the booking record lists none")  # fmt: skip
    as_("ivy", "case", "outcome", CASE, "--search", sid)  # refused: no outcome given
    as_("ivy", "corroborate", "add", sid, "--type", "vehicle-information",
        "--description", "Getaway car plate registered to the candidate's address")  # fmt: skip
    as_("ivy", "case", "outcome", CASE, "--search", sid, "--outcome", "confirmed",
        "--notes", "Vehicle registration and phone records place him at the scene")  # fmt: skip
    as_("ivy", "case", "close", CASE)
    as_("sam", "case", "disclose", CASE, "--out", str(HOME / "disclosure"))
    as_("audra", "audit", "verify")


def summary(probes: list[tuple[Path, str]]) -> int:
    """Rank of the true mate for every held-out probe (engine only: no case, no audit)."""
    os.environ["FACELEAD_HOME"] = str(HOME)
    from facelead.errors import FaceLeadError
    from facelead.services.context import Services
    from facelead.services.search import _search_gallery

    services = Services()
    ranks = []
    for path, subject in probes:
        try:
            result = _search_gallery(services, path.read_bytes(), top_k=20)
        except FaceLeadError as exc:
            print(f"{path.name}: refused [{exc.code}] {exc.message}")
            continue
        found = [c.rank for c in result.candidates if c.subject_id == subject]
        ranks.append(found[0] if found else None)
    rank1 = sum(1 for rank in ranks if rank == 1)
    print(
        f"\nHeld-out MEDS probes searched: {len(ranks)}; mate at rank 1: {rank1}; "
        f"mate in top 20: {sum(1 for r in ranks if r)}"
    )
    print("Investigative lead only — not a positive identification — not probable cause")
    return 0


if __name__ == "__main__":
    sys.exit(main())
