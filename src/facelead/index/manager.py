"""Keeps the saved index consistent with the database.

The database's ``index_state.generation`` is the truth: it changes in the
same transaction as any template insert, delete or sealing. An index file
built at a different generation is never searched; it is rebuilt from the
database, which is how deletions and sealings reach search.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from facelead.index.flat import FlatIndex

TemplateRow = tuple[int, int, int, NDArray[Any]]


def load_or_rebuild(
    directory: Path,
    model_id: str,
    current_generation: int,
    template_iter: Iterable[TemplateRow],
) -> FlatIndex:
    """Return an index at ``current_generation``, rebuilding and saving it if needed.

    ``template_iter`` is only consumed on a rebuild, so passing a lazy generator
    (``gallery.iter_templates``) costs nothing when the saved index is current.
    A missing, corrupt or stale index file is treated the same way: rebuilt.
    Read ``current_generation`` before iterating the templates (same session):
    a change committed in between then leaves an index labelled older than its
    content, which the next call rebuilds, never the unsafe opposite.
    """
    try:
        index = FlatIndex.load(directory, model_id)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError):
        index = None
    if index is not None and index.generation == current_generation:
        return index
    rebuilt = FlatIndex.from_rows(model_id, current_generation, iter(template_iter))
    rebuilt.save(directory)
    return rebuilt
