"""On-disk template cache for evaluations: append-only shards, written atomically.

Embedding all of LFW under three models costs about half an hour of CPU; a
rerun must take minutes. Every record is keyed by the image's SHA-256 (so a
renamed or re-copied file is still found) under a *key* that names exactly
what produced it: the detector policy for face records, the embedder name and
version plus that detector policy for templates. A changed alignment therefore
gets a new key and never mixes with old templates.

Each key is a folder of ``shard-*.npz`` files. A shard is written to a
temporary name and then renamed (atomic on POSIX), so a killed run leaves
complete shards only and the next run resumes where it stopped.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.errors import InputError

DEFAULT_CACHE = Path(".cache") / "facelead-eval"
"""Relative to the working directory (the repository root in the documented commands)."""

_SAFE_KEY = re.compile(r"[^A-Za-z0-9._@+=-]")


def safe_key(key: str) -> str:
    """A folder name for *key*: anything unusual becomes '_' so keys never escape the root."""
    cleaned = _SAFE_KEY.sub("_", key)
    if not cleaned or cleaned.startswith("."):
        raise InputError(f"bad cache key {key!r}")
    return cleaned


class TemplateCache:
    """Arrays per (key, image SHA-256); loading merges every shard of a key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, key: str) -> Path:
        return self.root / safe_key(key)

    def load(self, key: str) -> dict[str, dict[str, NDArray[np.generic]]]:
        """sha256 -> {field: row} for every record stored under *key* (later shards win)."""
        records: dict[str, dict[str, NDArray[np.generic]]] = {}
        folder = self.folder(key)
        if not folder.is_dir():
            return records
        for shard in sorted(folder.glob("shard-*.npz")):
            with np.load(shard, allow_pickle=False) as data:
                shas = [str(s) for s in data["sha256"]]
                fields = {name: data[name] for name in data.files if name != "sha256"}
            for i, sha in enumerate(shas):
                records[sha] = {name: values[i] for name, values in fields.items()}
        return records

    def append(self, key: str, shas: list[str], fields: dict[str, NDArray[np.generic]]) -> Path:
        """Write one new shard; every field array has one row per sha."""
        if not shas:
            raise InputError("nothing to write to the cache")
        for name, values in fields.items():
            if len(values) != len(shas):
                raise InputError(f"cache field {name} has {len(values)} rows for {len(shas)}")
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"shard-{len(list(folder.glob('shard-*.npz'))):05d}-{uuid.uuid4().hex[:8]}"
        tmp = folder / f".{name}.tmp.npz"
        final = folder / f"{name}.npz"
        arrays: dict[str, Any] = {"sha256": np.array(shas, dtype="U64"), **fields}
        np.savez(tmp, **arrays)
        os.replace(tmp, final)
        return final
