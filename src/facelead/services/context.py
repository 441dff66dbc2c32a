"""What every use case needs, built once per process from the settings."""

from __future__ import annotations

import threading
from functools import cached_property

from facelead.audit.checkpoint import KEY_FILE
from facelead.audit.log import configure_checkpoints
from facelead.biometrics.decode import DecodedImage, DecodeLimits, decode_image
from facelead.biometrics.pipeline import FacePipeline
from facelead.config import Settings
from facelead.index.flat import FlatIndex
from facelead.index.manager import Refresher, load_or_rebuild
from facelead.store import gallery as gallery_repo
from facelead.store import lifecycle as lifecycle_repo
from facelead.store.db import Database
from facelead.store.image_keys import ImageKeyring
from facelead.store.images import ImageStore, parse_image_key

ACTIVE_MODEL = "active_model"
"""Settings-table key naming the model id searches use after a re-templating switch."""


class Services:
    """Holds the database, image store, face pipeline and index cache.

    Models load lazily: commands that never touch a face (stats, help, user
    management) start instantly.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._index: FlatIndex | None = None
        self._index_lock = threading.Lock()
        self._pipelines: dict[str, FacePipeline] = {}
        self._pipeline_lock = threading.Lock()

    @cached_property
    def db(self) -> Database:
        db = Database(self.settings.effective_database_url)
        # Every N audit events a checkpoint is signed with the key under FACELEAD_HOME/keys.
        configure_checkpoints(db.url, self.settings.keys_dir / KEY_FILE)
        return db

    @cached_property
    def image_keyring(self) -> ImageKeyring:
        """Keys of both image stores: FACELEAD_IMAGE_KEY, else the key file, seals; the
        keyring's entries (a rotation's old keys) still open (store/image_keys.py)."""
        secret = self.settings.image_key
        env_key = parse_image_key(secret.get_secret_value()) if secret is not None else None
        return ImageKeyring(self.settings.keys_dir, env_key)

    @property
    def image_key(self) -> bytes:
        """The AES-256-GCM key new image files are sealed with."""
        return self.image_keyring.current()

    @cached_property
    def images(self) -> ImageStore:
        return ImageStore(self.settings.images_dir, self.image_keyring)

    @cached_property
    def probes(self) -> ImageStore:
        """Searched probe images: their own content-addressed area, never the gallery's."""
        return ImageStore(self.settings.probes_dir, self.image_keyring)

    def active_model_id(self) -> str:
        """The model every search and enrolment uses: the one switched to by a completed
        re-templating (``facelead gallery reindex``), else the configured one."""
        with self.db.session() as session:
            return lifecycle_repo.get_setting(session, ACTIVE_MODEL) or self.settings.model_id

    @property
    def pipeline(self) -> FacePipeline:
        """The active model's pipeline (what searches and enrolments use)."""
        return self.pipeline_for(self.active_model_id())

    def pipeline_for(self, model_id: str) -> FacePipeline:
        """A named model's pipeline: re-templating computes a model that is not yet active."""
        with self._pipeline_lock:
            if model_id not in self._pipelines:
                self._pipelines[model_id] = FacePipeline(model_id)
            return self._pipelines[model_id]

    @property
    def limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_bytes=self.settings.max_upload_bytes, max_pixels=self.settings.max_pixels
        )

    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(data, self.limits)

    def initialise(self) -> None:
        """Create the home folders and bring the database schema to head."""
        for folder in (
            self.settings.resolved_home,
            self.settings.images_dir,
            self.settings.probes_dir,
            self.settings.index_dir,
            self.settings.keys_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        self.db.upgrade()
        _ = self.image_key  # created at init (0600) rather than at the first image write

    def index(self) -> FlatIndex:
        """The template index, rebuilt from the database whenever it is stale."""
        model_id = self.active_model_id()
        with self._index_lock, self.db.session() as session:
            generation = gallery_repo.index_generation(session, model_id)
            if (
                self._index is None
                or self._index.model_id != model_id
                or self._index.generation != generation
            ):
                self._index = load_or_rebuild(
                    self.settings.index_dir / model_id,
                    model_id,
                    generation,
                    gallery_repo.iter_templates(session, model_id),
                )
            return self._index

    def start_index_refresher(self, interval: float = 0.25) -> Refresher:
        """For a serving worker: keep this process's index at the database generation in
        the background and record it under ``index/workers/`` (see index/manager.py)."""
        return Refresher(self.index, self.settings.index_dir, interval).start()
