"""Keeps the saved index consistent with the database, across processes and nodes.

The database's ``index_state.generation`` is the change sequence: it changes in
the same transaction as any template insert, delete or sealing. An index file
built at a different generation is never searched as it stands. It is brought
to the current generation in one of two ways:

* only removals (template deleted, subject sealed): the deletion bitmap is
  flipped, then the index is compacted from its own memory-mapped arrays (no
  vector is re-quantised) so that a sealed subject leaves no residue on disk;
* any template the index has never seen: a rebuild from the rows just read.

Both read the database's current template list once (the store keeps no change
log yet, so catch-up costs one pass over the template table, not one per change).

Several processes (``facelead serve --workers N``) share one index directory
and so one set of memory-mapped files in the page cache. An advisory file lock
(``<model>.lock``) serialises them: readers open the arrays under a shared lock
(a writer cannot delete them half-way through the opening), and a process that
finds the saved index stale takes the exclusive lock, looks again (another
worker may have caught up meanwhile: then it just opens that one), and only
then reads the database and writes. Files are replaced by rename, so a mapping
a worker already holds stays valid until it moves to the new generation.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.index.files import atomic_write, check_model_id, collect_rows
from facelead.index.flat import FlatIndex, warm_up

TemplateRow = tuple[int, int, int, NDArray[Any]]
logger = logging.getLogger("facelead.index")
_ERRORS = (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError, OSError)


@contextmanager
def index_lock(directory: Path, model_id: str, *, exclusive: bool) -> Iterator[None]:
    """``flock`` on ``<directory>/<model>.lock``: shared to open, exclusive to write."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{check_model_id(model_id)}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _load(directory: Path, model_id: str) -> FlatIndex | None:
    try:
        return FlatIndex.load(directory, model_id)
    except _ERRORS:
        return None


def _sync_bitmap(index: FlatIndex, db_ids: NDArray[np.int64]) -> bool:
    """Apply the database's template set through the bitmap; False if a rebuild is needed."""
    live_ids = index.template_ids[~index.deleted]
    if not np.all(np.isin(db_ids, live_ids)):
        return False
    index.deleted[:] = ~np.isin(index.template_ids, db_ids)
    index._refresh_live()
    return True


def load_or_rebuild(
    directory: Path,
    model_id: str,
    current_generation: int,
    template_iter: Iterable[TemplateRow],
) -> FlatIndex:
    """Return an index at ``current_generation``, syncing, rebuilding and saving it if needed.

    ``template_iter`` is only consumed when the saved index is not current, so
    passing a lazy generator (``gallery.iter_templates``) costs nothing when it is.
    A missing, corrupt or stale index file is handled the same way.
    Read ``current_generation`` before iterating the templates (same session):
    a change committed in between then leaves an index labelled older than its
    content, which the next call brings up to date, never the unsafe opposite.
    """
    directory = Path(directory)
    with index_lock(directory, model_id, exclusive=False):
        index = _load(directory, model_id)
    if index is not None and index.generation == current_generation:
        return index
    del index
    with index_lock(directory, model_id, exclusive=True):
        index = _load(directory, model_id)
        if index is not None and index.generation == current_generation:
            return index  # another process caught up while this one waited
        tids, pids, sids, vectors = collect_rows(iter(template_iter))
        if index is not None and _sync_bitmap(index, tids):
            compact = index.compacted(current_generation)
            del index  # drop the memory maps before their files are replaced
            compact.save(directory)
            return compact
        rebuilt = FlatIndex(model_id, current_generation, vectors, pids, sids, template_ids=tids)
        rebuilt.save(directory)
        return rebuilt


def write_status(directory: Path, index: FlatIndex) -> Path:
    """Record which generation this process serves (``<dir>/workers/<host>-<pid>.json``),
    so operators and tests can see every worker has caught up."""
    folder = Path(directory) / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    status = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "model_id": index.model_id,
        "generation": index.generation,
        "rows": index.rows,
        "live": len(index),
        "updated": time.time(),
    }
    target = folder / f"{status['host']}-{status['pid']}.json"
    payload = json.dumps(status, sort_keys=True).encode()
    atomic_write(target, lambda h: h.write(payload))
    return target


class Refresher:
    """A daemon thread that calls ``refresh`` (which returns the index at the database's
    current generation) every ``interval`` seconds and records the status.

    Searches check the generation themselves, so correctness never depends on this
    thread; it moves the catch-up work (compaction, rebuild, opening new files) off
    the search path, so every worker has applied a change within about ``interval``
    plus the catch-up time of the change."""

    def __init__(
        self, refresh: Callable[[], FlatIndex], status_dir: Path, interval: float = 0.25
    ) -> None:
        self.refresh = refresh
        self.status_dir = status_dir
        self.interval = interval
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="facelead-index", daemon=True)

    def start(self) -> Refresher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        try:
            warm_up()
        except Exception:  # pragma: no cover - the first search compiles instead
            logger.exception("search kernels did not compile at start")
        last: tuple[str, int, int] | None = None
        while not self._stop.is_set():
            try:
                index = self.refresh()
                state = (index.model_id, index.generation, len(index))
                if state != last:
                    write_status(self.status_dir, index)
                    last = state
            except Exception:  # a database hiccup must not kill the worker's refresher
                logger.exception("index refresh failed; retrying")
            self._stop.wait(self.interval)
