"""Template index: exact search, kept consistent with the database by generation."""

from facelead.index.flat import FlatIndex, Hit
from facelead.index.manager import load_or_rebuild

__all__ = ["FlatIndex", "Hit", "load_or_rebuild"]
