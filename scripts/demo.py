"""`make demo`: enrol real booking photos, then search held-out encounters end to end.

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
HOME = Path(os.environ.get("FACELEAD_HOME", ROOT / "facelead-data" / "demo"))
MEDS_NAME = re.compile(r"S(\d+)-(\d+)-t10_(\d+)\.jpg$")
BIN = Path(sys.executable).parent


def facelead(*args: str) -> None:
    print(f"\n$ facelead {' '.join(args)}", flush=True)
    subprocess.run(
        [str(BIN / "facelead"), *args], check=False, env={**os.environ, "FACELEAD_HOME": str(HOME)}
    )


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
    facelead("init")
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
    for path, subject in probes[:2]:
        print(f"\nProbe {path.name}: a later booking of {subject}, never enrolled.")
        facelead("search", str(path), "--top", "5")
    return summary(probes)


def summary(probes: list[tuple[Path, str]]) -> int:
    """Rank of the true mate for every held-out probe, through the service layer."""
    os.environ["FACELEAD_HOME"] = str(HOME)
    from facelead.errors import FaceLeadError
    from facelead.services.context import Services
    from facelead.services.search import search_probe

    services = Services()
    ranks = []
    for path, subject in probes:
        try:
            result = search_probe(services, path.read_bytes(), top_k=20)
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
