"""Persistence: database, schema migrations, gallery repository, image store."""

from facelead.store import audit_models as audit_models  # registers the audit tables
from facelead.store import case_models as case_models  # registers the case tables
from facelead.store import identity_models as identity_models  # registers the identity tables
from facelead.store import lifecycle_models as lifecycle_models  # registers the lifecycle tables
from facelead.store import review_models as review_models  # registers the review tables
from facelead.store.db import Database
from facelead.store.gallery import PhotoInfo
from facelead.store.images import ImageStore
from facelead.store.models import Base, Booking, IndexState, Photo, Subject, Template

__all__ = [
    "Base",
    "Booking",
    "Database",
    "ImageStore",
    "IndexState",
    "Photo",
    "PhotoInfo",
    "Subject",
    "Template",
]
