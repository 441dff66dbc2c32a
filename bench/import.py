"""Images per second of ``facelead import`` on 2 worker processes, MEDS and an LFW sample.

Each run imports into a fresh SQLite home under /tmp through the service path
the CLI takes (status table, one audited transaction per image, workers that
load the models once). Time counts from the first item to the last outcome,
model loading included, so it is what an operator waits for.

    .venv/bin/python bench/import.py [--workers 2] [--lfw 1000]

Writes bench/results/import.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from facelead.config import Settings
from facelead.domain.access import SYSTEM
from facelead.services.context import Services
from facelead.services.importer import ImportOptions, collect, prepare_import, run_import

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "import.json"
WORKDIR = Path("/tmp/facelead-bench-import")


def meds_manifest(folder: Path) -> Path:
    sheet = WORKDIR / "meds.csv"
    with sheet.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["path", "subject_id", "booking_number", "agency"])
        for path in sorted((DATA / "meds").glob("*.jpg")):
            subject, booking = path.name.split("-")[:2]
            out.writerow([str(path), subject, f"{subject}-{booking}", "MEDS"])
    return sheet


def lfw_manifest(count: int) -> Path:
    """Every k-th image of the sorted list, so the sample spans all people evenly."""
    images = sorted((DATA / "lfw" / "images").rglob("*.jpg"))
    step = max(1, len(images) // count)
    sheet = WORKDIR / "lfw.csv"
    with sheet.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["path", "subject_id", "booking_number", "agency"])
        for path in images[::step][:count]:
            out.writerow([str(path), path.parent.name[:64], path.stem[:64], "LFW"])
    return sheet


def run(name: str, sheet: Path, workers: int) -> dict[str, object]:
    home = WORKDIR / f"home-{name}"
    services = Services(Settings(home=home))
    services.initialise()
    options = ImportOptions(workers=workers)
    plan = prepare_import(services, SYSTEM, collect([sheet]), options)
    start, cpu = time.perf_counter(), time.process_time()
    statuses: Counter[str] = Counter()
    for outcome in run_import(services, SYSTEM, plan, options):
        done = outcome.code or "done"  # as the import summary counts it (a done always has one)
        statuses[done if outcome.status == "done" else f"refused:{outcome.code}"] += 1
    wall = time.perf_counter() - start
    services.db.dispose()
    with sqlite3.connect(home / "facelead.db") as db:
        photos = db.execute("SELECT count(*) FROM photos").fetchone()[0]
    return {
        "images": len(plan.records),
        "seconds": round(wall, 2),
        "images_per_second": round(len(plan.records) / wall, 2),
        "parent_cpu_s": round(time.process_time() - cpu, 2),
        "photos_enrolled": photos,
        "outcomes": dict(sorted(statuses.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lfw", type=int, default=1000, help="LFW images to import")
    args = parser.parse_args()
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    results: dict[str, object] = {
        "workers": args.workers,
        "model_id": Settings().model_id,
        "meds": run("meds", meds_manifest(DATA / "meds"), args.workers),
        "lfw": run("lfw", lfw_manifest(args.lfw), args.workers),
        "database": "SQLite (WAL) under /tmp",
        "cpu": f"{platform.machine()}, {os.cpu_count()} cores visible, shared",
        "python": platform.python_version(),
        "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    shutil.rmtree(WORKDIR, ignore_errors=True)


if __name__ == "__main__":
    main()
