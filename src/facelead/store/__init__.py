"""Persistence: database, schema migrations, gallery repository, image store."""

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
