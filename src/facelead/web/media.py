"""Image bytes as the browser gets them: a media type from the magic bytes, or a data URI."""

from __future__ import annotations

import base64

_MAGIC = (
    (b"\xff\xd8", "image/jpeg"),
    (b"\x89PNG", "image/png"),
    (b"BM", "image/bmp"),
    (b"GIF8", "image/gif"),
)


def media_type(data: bytes) -> str | None:
    """What the browser can show; None for formats it cannot (TIFF...)."""
    found = next((mime for magic, mime in _MAGIC if data.startswith(magic)), None)
    if found is None and data[8:12] == b"WEBP":
        found = "image/webp"
    return found


def data_uri(data: bytes) -> str | None:
    """An image embedded in the page it belongs to (a lead report carries its own photos)."""
    mime = media_type(data)
    if mime is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
