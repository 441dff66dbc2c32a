"""One exception family, each refusal with a stable machine-readable code.

Codes are part of the public contract: the CLI prints them, the API returns
them as ``{"code", "message"}`` and auditors count them, so they never change
meaning once published.
"""

from __future__ import annotations

from typing import Any


class FaceLeadError(Exception):
    """Base of every refusal FaceLead reports to a user."""

    code: str = "facelead_error"
    http_status: int = 400

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details: dict[str, Any] = details

    def as_dict(self) -> dict[str, Any]:
        """The JSON body an API returns and an audit event records."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InputError(FaceLeadError):
    """The caller sent something unusable: bad image, bad argument."""

    code = "invalid_input"
    http_status = 422


class ImageError(InputError):
    """An image could not be decoded safely (format, size, corruption)."""

    code = "invalid_image"
    http_status = 415


class FaceError(InputError):
    """The image decoded but its faces do not allow the requested action."""

    code = "face_error"
    http_status = 422


class NotFoundError(FaceLeadError):
    code = "not_found"
    http_status = 404


class ConflictError(FaceLeadError):
    code = "conflict"
    http_status = 409


class ModelIntegrityError(FaceLeadError):
    """A model weight file is missing or its SHA-256 differs from the pinned one."""

    code = "model_integrity"
    http_status = 500


class ConfigurationError(FaceLeadError):
    code = "configuration"
    http_status = 500


class AuthenticationError(FaceLeadError):
    """Who you are could not be established (bad password, token, TOTP code)."""

    code = "unauthenticated"
    http_status = 401


class PermissionDenied(FaceLeadError):
    """You are known, but your role, training or assignment does not allow this."""

    code = "forbidden"
    http_status = 403


class PolicyRefusal(FaceLeadError):
    """A search-request policy rule refused the request (purpose, provenance, source...)."""

    code = "policy_refused"
    http_status = 422


class RateLimited(FaceLeadError):
    code = "rate_limited"
    http_status = 429
