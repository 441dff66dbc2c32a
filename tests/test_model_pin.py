"""A gallery keeps its model when the configured default changes (a new release)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from facelead.config import Settings
from facelead.domain.access import SYSTEM
from facelead.services.context import ACTIVE_MODEL, Services
from facelead.services.gallery import enroll_files, gallery_stats
from facelead.services.search import _search_gallery
from facelead.store import lifecycle as lifecycle_repo
from tests.conftest import make_services

pytestmark = pytest.mark.models
OTHER = "sface-v2"


def _setting(services: Services) -> str | None:
    with services.db.session() as session:
        return lifecycle_repo.get_setting(session, ACTIVE_MODEL)


def test_first_enrolment_pins_the_model_against_a_new_default(
    meds_dir: Path, tmp_path: Path
) -> None:
    services = make_services(tmp_path / "home")
    assert _setting(services) is None  # an empty gallery follows the configuration
    list(enroll_files(services, SYSTEM, sorted(meds_dir.glob("S00[1-3]-01-t10_01.jpg"))))
    pinned = services.settings.model_id
    assert _setting(services) == pinned

    upgraded = Services(Settings(home=services.settings.home, model_id=OTHER))
    assert upgraded.active_model_id() == pinned
    assert gallery_stats(upgraded, SYSTEM)["model_id"] == pinned
    found = _search_gallery(upgraded, (meds_dir / "S001-02-t10_01.jpg").read_bytes(), top_k=3)
    assert found.model_id == pinned and found.candidates[0].subject_id.startswith("S001")
    list(enroll_files(upgraded, SYSTEM, [meds_dir / "S004-01-t10_01.jpg"]))
    assert _setting(upgraded) == pinned  # later enrolments neither move nor re-pin it


def test_migration_pins_an_existing_gallery(meds_dir: Path, tmp_path: Path) -> None:
    services = make_services(tmp_path / "home")
    list(enroll_files(services, SYSTEM, [meds_dir / "S001-01-t10_01.jpg"]))
    db = services.db
    with db.engine.begin() as conn:  # the state a gallery enrolled before 0008 is in
        conn.execute(sa.text("DELETE FROM gallery_settings WHERE key = 'active_model'"))
    cfg = db.alembic_config()
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0007_booking_tombstones")
    assert db.current_heads() == ("0007_booking_tombstones",)
    db.upgrade()
    assert _setting(services) == services.settings.model_id
    with db.engine.begin() as connection:  # the downgrade removes only its own pin
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0007_booking_tombstones")
    assert _setting(services) is None
