"""Signed checkpoints: the Ed25519 key file, signing, and the JSON-lines export.

The private key is a PKCS#8 PEM file (mode 0600) under the deployment's
``keys`` folder, created on first use; it is never stored in the database,
so an administrator who rewrites the audit tables cannot re-sign their
version of history. The public key sits next to it (``.pub``) for auditors
who verify elsewhere.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from facelead.audit.chain import (
    AuditIntegrityError,
    Checkpoint,
    checkpoint_message,
    format_ts,
    public_key_id,
)

KEY_FILE = "audit-checkpoint-ed25519.pem"
PUBLIC_KEY_SUFFIX = ".pub"
CHECKPOINT_FIELDS = ("seq", "head_hash", "ts", "key_id", "signature")


def sign_checkpoint(
    private_key: Ed25519PrivateKey, seq: int, head_hash: str, ts: datetime
) -> Checkpoint:
    """Sign the chain head after event ``seq`` (``GENESIS_HASH`` at seq 0)."""
    stamp = format_ts(ts)
    signature = private_key.sign(checkpoint_message(seq, head_hash, stamp))
    return Checkpoint(
        seq=seq,
        head_hash=head_hash,
        ts=stamp,
        key_id=public_key_id(private_key.public_key()),
        signature=base64.b64encode(signature).decode("ascii"),
    )


def to_jsonl(checkpoints: Iterable[Checkpoint]) -> str:
    """One compact JSON object per line, in the order given."""
    return "".join(
        json.dumps(cp.as_dict(), sort_keys=True, separators=(",", ":")) + "\n" for cp in checkpoints
    )


def from_jsonl(text: str, source: str = "checkpoint file") -> list[Checkpoint]:
    """Parse :func:`to_jsonl` output; a malformed line is an integrity error, never skipped."""
    checkpoints = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            checkpoints.append(
                Checkpoint(
                    seq=_int(row["seq"]),
                    head_hash=str(row["head_hash"]),
                    ts=str(row["ts"]),
                    key_id=str(row["key_id"]),
                    signature=str(row["signature"]),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditIntegrityError(
                f"{source} line {number} is not a checkpoint: {exc}", line=number
            ) from exc
    return checkpoints


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"seq must be a non-negative integer, not {value!r}")
    return value


_KEY_LOCK = threading.Lock()


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The signing key at ``path``; generated (mode 0600, folder 0700) when absent.

    Creation is atomic: the key is written to a private temporary file and
    hard-linked into place, so two processes starting at once agree on one key.
    """
    with _KEY_LOCK:
        if not path.exists():
            _create_key(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditIntegrityError(f"{path} does not hold an Ed25519 private key")
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return  # another process won the race; use its key
    finally:
        tmp.unlink(missing_ok=True)
    public_path(path).write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def public_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + PUBLIC_KEY_SUFFIX)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from PEM (SubjectPublicKeyInfo) or from the private key file itself."""
    data = path.read_bytes()
    key: object
    if b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None)
        key = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise AuditIntegrityError(f"{path} does not hold an Ed25519 key")
    return key
