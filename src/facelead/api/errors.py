"""Every error as JSON ``{code, message}`` with its proper status.

Refusals come from the services as ``FaceLeadError`` (code and status are
part of the public contract, see facelead.errors); FastAPI's own errors
(validation, unknown route, wrong method, unparseable body) are mapped to the
same shape so a client has one error format to handle.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facelead.api.models import ErrorBody
from facelead.errors import FaceLeadError

logger = logging.getLogger("facelead.api")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
}

_DESCRIPTIONS = {
    400: "Malformed request (e.g. an unparseable body)",
    401: "Not authenticated: missing, unknown, expired or revoked token",
    403: "Authenticated, but role, training, agency or assignment does not allow this",
    404: "No such object (or route)",
    409: "The object's state does not allow this now",
    413: "Request body larger than the upload limit",
    415: "Not a still image FaceLead accepts, or not the expected content type",
    422: "Invalid request: a field, a policy rule or the probe's faces",
    429: "Per-user search limit reached",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the error body for these statuses."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


def _json_safe(value: Any) -> Any:
    """Details may hold numpy scalars or dates: whatever json cannot encode becomes text."""
    return json.loads(json.dumps(value, default=str))


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = _json_safe(details)
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, headers=headers)


async def _facelead_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaceLeadError)
    if exc.http_status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc.as_dict())
    return error_response(exc.http_status, exc.code, exc.message, exc.details)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 listing each invalid field; the input itself is never echoed (passwords)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    message = "invalid request"
    if errors:
        message = f"{'.'.join(errors[0]['loc'])}: {errors[0]['msg']}"
    return error_response(422, "invalid_request", message, {"errors": errors})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Framework errors: unknown route (404), wrong method (405), bad body (400), 413..."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = HTTP_CODES.get(status, f"http_{status}")
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else _phrase(status)
    if status == 404 and message == "Not Found":
        message = f"no route {request.url.path}"
    return error_response(status, code, message, headers=dict(exc.headers or {}))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FaceLeadError, _facelead_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
