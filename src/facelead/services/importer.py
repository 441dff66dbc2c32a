"""``facelead import``: bulk enrolment, resumable, idempotent and parallel.

How it stays exact when killed at any instant:

1. The parent lists every item (a manifest row, or a Type-10 record of an
   ANSI/NIST-ITL file), gives each a stable key and registers the unknown
   ones as ``pending`` in ``import_items`` (one audited transaction).
2. Workers (processes, models loaded once each) take pending items. **Each
   worker writes its own transaction per item**: the enrolment rows, the
   audit event and the item's ``done`` status commit together, or not at all.
   A refusal is audited by ``perform`` and then marked ``refused`` with its
   code. SQLite runs in WAL mode with a busy timeout, so writers queue rather
   than fail; a lost race on a unique key (two workers, one new subject) is
   retried and then finds the row the other committed.
3. A re-run skips ``done`` and ``refused`` items and retries the rest. The
   image file is written last inside the transaction and is content
   addressed, so a kill between file and commit leaves a file that the
   re-run writes again, byte for byte.

An item refused at the very instant of a kill may be audited as refused
twice (once per attempt); the gallery itself is identical either way.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from facelead.config import Settings
from facelead.domain.access import Action, Actor
from facelead.domain.gallery import ImportRecord, check_adult, read_import_manifest
from facelead.errors import FaceLeadError, InputError
from facelead.services import ansi_nist
from facelead.services.context import Services
from facelead.services.gallery import enrol_in_scope
from facelead.services.uow import perform
from facelead.store import lifecycle as repo

NIST_SUFFIXES = frozenset({".an2", ".nist", ".eft", ".int", ".xml_an2"})
MANIFEST_NAME = "manifest.csv"
BATCH = 4  # items per task: enough to amortise the pipe, small enough to keep all cores busy
RETRIES = 3


def item_key(locator: str) -> str:
    return hashlib.sha256(locator.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ImportOptions:
    workers: int = 0  # 0: one per CPU core
    allow_juvenile: bool = False
    require_age: bool = False
    retry_refused: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ImportOptions:
        base = cls(
            workers=settings.import_workers,
            allow_juvenile=settings.import_allow_juvenile,
            require_age=settings.import_require_age,
        )
        return cls(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})

    def processes(self, items: int) -> int:
        wanted = self.workers if self.workers > 0 else (os.cpu_count() or 1)
        return max(1, min(wanted, max(items, 1)))


@dataclass(frozen=True)
class ItemOutcome:
    key: str
    source: str
    status: str  # done | refused
    code: str | None = None  # enrolment status for done, refusal code for refused
    message: str | None = None


@dataclass(frozen=True)
class ImportPlan:
    """What a run will do: the items still to process and what an earlier run finished."""

    records: tuple[ImportRecord, ...]
    total: int
    already_done: int
    already_refused: int
    already_removed: int


# --------------------------------------------------------------------------- planning


def collect(sources: Sequence[Path], manifest: Path | None = None) -> list[ImportRecord]:
    """Items of folders (with a manifest) and ANSI/NIST-ITL files, in a stable order."""
    records: list[ImportRecord] = []
    for source in sources:
        if source.is_dir():
            sheet = manifest or source / MANIFEST_NAME
            if not sheet.is_file():
                raise InputError(
                    f"{source} is a folder: give --manifest or put a {MANIFEST_NAME} in it",
                    code="invalid_manifest",
                )
            records.extend(read_import_manifest(sheet))
        elif source.is_file() and source.suffix.lower() in NIST_SUFFIXES:
            records.extend(_nist_file(source))
        elif source.is_file() and source.suffix.lower() == ".csv":
            records.extend(read_import_manifest(source))
        else:
            raise InputError(
                f"{source}: expected a folder, a manifest .csv or an ANSI/NIST-ITL file "
                f"({', '.join(sorted(NIST_SUFFIXES))})",
                code="invalid_source",
            )
    keyed: dict[str, ImportRecord] = {}
    for record in records:
        keyed.setdefault(item_key(record.key), record)
    return [keyed[k] for k in sorted(keyed, key=lambda k: keyed[k].source)]


def _nist_file(path: Path) -> list[ImportRecord]:
    resolved = path.resolve()
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", code="unreadable") from exc
    return ansi_nist.import_records(data, str(resolved))


def prepare_import(
    services: Services, actor: Actor, records: Sequence[ImportRecord], options: ImportOptions
) -> ImportPlan:
    """Register unknown items as pending (one audited transaction); nothing is enrolled yet."""
    keys = [item_key(r.key) for r in records]
    with perform(services, actor, Action.GALLERY_ENROL, object_type="import") as scope:
        states = repo.item_states(scope.session, keys)
        if options.retry_refused:
            retried = [k for k in keys if states.get(k) == repo.REFUSED]
            repo.reset_refused(scope.session, retried)
            states.update(dict.fromkeys(retried, repo.PENDING))
        new = [(k, r.source) for k, r in zip(keys, records, strict=True) if k not in states]
        repo.add_pending(scope.session, new)
        tally = Counter(states.values())
        todo = tuple(
            r
            for k, r in zip(keys, records, strict=True)
            if states.get(k, repo.PENDING) == repo.PENDING
        )
        scope.details.update(
            items=len(records),
            new=len(new),
            to_process=len(todo),
            done_before=tally[repo.DONE],
            refused_before=tally[repo.REFUSED],
        )
    return ImportPlan(
        todo, len(records), tally[repo.DONE], tally[repo.REFUSED], tally[repo.REMOVED]
    )


# --------------------------------------------------------------------------- one item


def import_one(
    services: Services, actor: Actor, record: ImportRecord, options: ImportOptions
) -> ItemOutcome:
    """Enrol one item and set its status in the same audited transaction."""
    key = item_key(record.key)
    for attempt in range(RETRIES):
        try:
            return _attempt(services, actor, record, key, options)
        except FaceLeadError as exc:
            with services.db.session() as session:
                repo.mark_item(session, key, repo.REFUSED, code=exc.code, message=exc.message)
            return ItemOutcome(key, record.source, repo.REFUSED, exc.code, exc.message)
        except (IntegrityError, OperationalError):
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _attempt(
    services: Services, actor: Actor, record: ImportRecord, key: str, options: ImportOptions
) -> ItemOutcome:
    with perform(services, actor, Action.GALLERY_ENROL, object_type="photo") as scope:
        scope.details["import_item"] = key
        check_adult(record, allow_juvenile=options.allow_juvenile, require_age=options.require_age)
        data = _bytes_of(record)
        result = enrol_in_scope(services, scope, data, record.source, record.ref)
        repo.mark_item(
            scope.session,
            key,
            repo.DONE,
            code=result.status.value,
            subject_external_id=record.ref.subject_id,
            image_sha256=scope.details["image_sha256"],
            photo_id=result.photo_id,
        )
    return ItemOutcome(key, record.source, repo.DONE, result.status.value)


def _bytes_of(record: ImportRecord) -> bytes:
    if record.data is not None:
        return record.data
    try:
        return Path(record.path or "").read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", code="unreadable") from exc


# --------------------------------------------------------------------------- the run


_WORKER: dict[str, Any] = {}


def _worker_init(settings: dict[str, Any], actor: Actor, options: ImportOptions) -> None:
    """Each process opens its own database engine and loads the models exactly once."""
    import cv2

    cv2.setNumThreads(1)  # we parallelise by process; OpenCV's own threads would oversubscribe
    services = Services(Settings(**settings))
    services.pipeline  # noqa: B018 - load the models now, not inside the first transaction
    _WORKER.update(services=services, actor=actor, options=options)


def _worker_batch(batch: list[ImportRecord]) -> list[ItemOutcome]:
    services, actor, options = _WORKER["services"], _WORKER["actor"], _WORKER["options"]
    return [import_one(services, actor, record, options) for record in batch]


def run_import(
    services: Services, actor: Actor, plan: ImportPlan, options: ImportOptions
) -> Iterator[ItemOutcome]:
    """Process the plan's pending items; yields each outcome as it lands (for a progress bar)."""
    records = list(plan.records)
    processes = options.processes(len(records))
    if processes == 1 or len(records) <= 1:
        for record in records:
            yield import_one(services, actor, record, options)
        return
    settings = services.settings.model_dump(mode="python")
    context = multiprocessing.get_context("spawn")  # no inherited locks, threads or engines
    with ProcessPoolExecutor(
        processes, context, initializer=_worker_init, initargs=(settings, actor, options)
    ) as pool:
        yield from _pump(pool, _batches(records, BATCH), processes * 2)


def _batches(records: list[ImportRecord], size: int) -> Iterator[list[ImportRecord]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def _pump(
    pool: ProcessPoolExecutor, batches: Iterator[list[ImportRecord]], in_flight: int
) -> Iterator[ItemOutcome]:
    """Keep a bounded number of batches queued, so memory does not grow with the import."""
    pending: set[Future[list[ItemOutcome]]] = set()
    for batch in batches:
        pending.add(pool.submit(_worker_batch, batch))
        if len(pending) >= in_flight:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield from future.result()
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            yield from future.result()


@dataclass(frozen=True)
class ImportSummary:
    statuses: dict[str, int]  # enrolled, duplicate, stored_not_searchable, refused
    refusals: dict[str, int]  # by code


def summarise(outcomes: Iterable[ItemOutcome]) -> ImportSummary:
    statuses: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome.status == repo.REFUSED:
            statuses["refused"] += 1
            refusals[outcome.code or "unknown"] += 1
        else:
            statuses[outcome.code or "done"] += 1
    return ImportSummary(dict(statuses), dict(refusals))


def import_status(services: Services, actor: Actor) -> dict[str, Any]:
    """Counts of the status table: items by status and refusals by reason."""
    with perform(services, actor, Action.GALLERY_READ, object_type="import") as scope:
        return {
            "items": repo.import_counts(scope.session),
            "refusals": repo.refusal_counts(scope.session),
        }
