"""The one settings object (env prefix ``FACELEAD_``).

Everything FaceLead keeps lives under ``home``: database, images, index, keys.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment settings; read from the environment, never from the repo."""

    model_config = SettingsConfigDict(env_prefix="FACELEAD_", extra="ignore")

    home: Path = Field(default=Path("./facelead-data"))
    database_url: str | None = None
    model_id: str = "fusion-v5"
    default_top_k: int = 20
    max_top_k: int = 50
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    # Image encryption at rest (docs/security.md): 32 bytes as hex or base64; unset, the
    # key file FACELEAD_HOME/keys/image-aes256gcm.key is used (created at init, 0600).
    image_key: SecretStr | None = None
    # Identity (docs/policy.md "Identity and access"; CJIS advanced authentication).
    password_min_length: int = 12
    lockout_max_failures: int = 5
    lockout_minutes: int = 30
    token_default_days: int = 30
    token_max_days: int = 90
    # Search request policy (docs/policy.md). Names compare lower-case-hyphenated.
    search_purposes: list[str] = Field(
        default_factory=lambda: [
            "criminal-investigation",
            "imminent-threat-to-life",
            "identify-deceased-or-incapacitated",
            "at-risk-or-missing-person",
        ]
    )
    offence_categories: list[str] = Field(
        default_factory=lambda: [
            "homicide",
            "robbery",
            "assault",
            "sexual-assault",
            "kidnapping",
            "human-trafficking",
            "burglary",
            "theft",
            "fraud",
            "identity-theft",
            "arson",
            "weapons",
            "narcotics",
            "missing-person",
            "death-investigation",
            "other-felony",
        ]
    )
    probe_sources: list[str] = Field(
        default_factory=lambda: [
            "digital-photo",
            "phone-photo",
            "cctv-still",
            "atm-still",
            "social-media",
            "witness-photo",
            "crime-scene-photo",
            "identity-document",
        ]
    )
    probe_edits: list[str] = Field(
        default_factory=lambda: [
            "crop",
            "rotate",
            "resize",
            "brightness",
            "contrast",
            "colour-balance",
            "gamma",
            "greyscale",
        ]
    )
    min_justification_chars: int = 20
    daily_search_limit: int = 25
    quality_override_valid_days: int = 7
    # Examiner review and lead reports (docs/review.md).
    review_blind: bool = True  # shuffle candidates and hide scores until dispositions are in
    review_max_leads: int = 2  # the FBI returns one or two candidates, never a list
    review_min_features: int = 4  # FISWG checklist features compared before any disposition
    stale_photo_years: int = 5  # lead reports flag older booking photos as possibly stale
    # Gallery lifecycle (docs/lifecycle.md): bulk import, retention.
    import_workers: int = 0  # processes for `facelead import`; 0 = one per CPU core
    import_allow_juvenile: bool = False  # age at booking under 18 is refused unless True
    import_require_age: bool = False  # True: a record without date of birth or age is refused
    retention_no_lead_days: int = 90  # probe + candidates of a no-lead search, after the search
    retention_closed_case_years: int = 5  # probe + candidates of a closed case, after closure

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

    @property
    def probes_dir(self) -> Path:
        """Probe images: a separate content-addressed area, never the gallery."""
        return self.resolved_home / "probes"
