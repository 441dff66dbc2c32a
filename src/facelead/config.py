"""The one settings object (env prefix ``FACELEAD_``).

Everything FaceLead keeps lives under ``home``: database, images, index, keys.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment settings; read from the environment, never from the repo."""

    model_config = SettingsConfigDict(env_prefix="FACELEAD_", extra="ignore")

    home: Path = Field(default=Path("./facelead-data"))
    database_url: str | None = None
    model_id: str = "fusion-v1"
    default_top_k: int = 20
    max_top_k: int = 50
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000

    @cached_property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        """SQLite under ``home`` unless ``FACELEAD_DATABASE_URL`` names another database."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home / 'facelead.db'}"

    @property
    def images_dir(self) -> Path:
        return self.resolved_home / "images"

    @property
    def index_dir(self) -> Path:
        return self.resolved_home / "index"

    @property
    def keys_dir(self) -> Path:
        return self.resolved_home / "keys"
