"""All /api/v1 routes in one router; every route documents the common error responses."""

from __future__ import annotations

from fastapi import APIRouter

from facelead.api.errors import error_responses
from facelead.api.routes import audit, auth, cases, gallery, images, leads, review, searches, users

api_router = APIRouter(responses=error_responses(401, 403, 404, 422))
for module in (auth, cases, searches, images, review, leads, gallery, audit, users):
    api_router.include_router(module.router)
