"""Multipart uploads: one image per request, read only after the size limit has held.

The body limit middleware has already refused anything over the upload limit
by the time these run, so reading a part into memory is bounded.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

MULTIPART = "multipart/form-data"


def require_multipart(request: Request) -> None:
    """415 for anything but multipart/form-data (a JSON body, a bare image)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != MULTIPART:
        raise HTTPException(415, f"send {MULTIPART} with one image file part")


async def file_parts(request: Request) -> list[UploadFile]:
    """Every file part of the (already parsed, cached) form, whatever its field name.

    Starlette's ``UploadFile``: the parser's parts are not FastAPI's subclass.
    """
    form = await request.form()
    return [value for _, value in form.multi_items() if isinstance(value, UploadFile)]


FileParts = Annotated[list[UploadFile], Depends(file_parts)]


def read_part(part: UploadFile) -> bytes:
    """The part's bytes (sync: routes run in the thread pool)."""
    part.file.seek(0)
    return part.file.read()


def safe_filename(part: UploadFile, default: str = "upload") -> str:
    """The client's file name, printable characters only: it is recorded in the audit log."""
    name = "".join(c for c in (part.filename or "") if c.isprintable())
    return name.replace("/", "_").replace("\\", "_")[-255:] or default
