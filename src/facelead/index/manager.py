"""Keeps the saved index consistent with the database.

The database's ``index_state.generation`` is the truth: it changes in the
same transaction as any template insert, delete or sealing. An index file
built at a different generation is never searched as it stands. It is brought
to the current generation in one of two ways:

* only removals (template deleted, subject sealed): the deletion bitmap is
  flipped, then the index is compacted from its own memory-mapped arrays (no
  vector is read back from the database or re-quantised) so that a sealed
  subject leaves no residue on disk;
* any template the index has never seen: a full rebuild.

Both read the database's current template list; the store keeps no change log
yet, so catch-up costs one pass over the template table, not one per change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.index.flat import FlatIndex

TemplateRow = tuple[int, int, int, NDArray[Any]]


def _sync_bitmap(index: FlatIndex, rows: list[TemplateRow]) -> bool:
    """Apply the database's template set through the bitmap; False if a rebuild is needed."""
    db_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
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
    try:
        index = FlatIndex.load(directory, model_id)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError, OSError):
        index = None
    if index is not None and index.generation == current_generation:
        return index
    rows = list(template_iter)
    if index is not None and _sync_bitmap(index, rows):
        compact = index.compacted(current_generation)
        del index  # drop the memory maps before their files are replaced
        compact.save(directory)
        return compact
    rebuilt = FlatIndex.from_rows(model_id, current_generation, iter(rows))
    rebuilt.save(directory)
    return rebuilt
