"""Every stable error code raised in the source is explained in docs/.

Codes are an interface: scripts branch on them and users look them up. A code
that appears in no document is a refusal nobody can read about.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r'\bcode\s*=\s*"([a-z_]+)"')


def raised_codes() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "facelead").rglob("*.py"):
        found.update(CODE.findall(path.read_text(encoding="utf-8")))
    return found


def test_the_scan_finds_the_codes_it_should() -> None:
    codes = raised_codes()
    assert {"no_face", "forbidden", "rate_limited", "image_integrity"} <= codes
    assert len(codes) > 100


def test_every_error_code_is_documented() -> None:
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    missing = sorted(code for code in raised_codes() if f"`{code}`" not in docs)
    assert not missing, f"error codes with no entry in docs/*.md: {missing}"
