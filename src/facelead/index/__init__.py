"""Template index: exact search, kept consistent with the database by generation."""

from facelead.index.flat import FlatIndex
from facelead.index.manager import load_or_rebuild
from facelead.index.scan_setup import Hit

__all__ = ["FlatIndex", "Hit", "load_or_rebuild"]
