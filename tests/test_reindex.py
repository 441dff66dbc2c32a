"""Re-templating: new templates next to the old, resumable, one atomic switch, no mixing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facelead.config import Settings
from facelead.domain.access import SYSTEM
from facelead.errors import ConflictError
from facelead.services.context import Services
from facelead.services.gallery import enroll_files
from facelead.services.reindex import active_model_id, reindex, switch_model
from facelead.services.search import _search_gallery
from facelead.store.models import Template
from tests.conftest import make_services

pytestmark = pytest.mark.models
NEW = "sface-v1"


def templates_by_model(services: Services) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    with services.db.session() as session:
        for model, photo in session.execute(sa.select(Template.model_id, Template.photo_id)):
            out.setdefault(model, set()).add(photo)
    return out


def test_reindex_builds_resumes_and_switches_atomically(meds_dir: Path, tmp_path: Path) -> None:
    services = make_services(tmp_path / "home")
    first = sorted(meds_dir.glob("S00[1-3]-0[1-3]-t10_01.jpg"))
    late = meds_dir / "S004-01-t10_01.jpg"
    list(enroll_files(services, SYSTEM, first))
    old = services.settings.model_id
    before = templates_by_model(services)[old]

    batches = list(reindex(services, SYSTEM, NEW, workers=2))
    assert sum(b.written for b in batches) == len(before)
    assert templates_by_model(services)[NEW] == before
    assert active_model_id(services) == old  # nothing switched yet

    list(enroll_files(services, SYSTEM, [late]))  # enrolled under the old model meanwhile
    with pytest.raises(ConflictError) as info:
        switch_model(services, SYSTEM, NEW)
    assert info.value.code == "reindex_incomplete"
    assert active_model_id(services) == old
    resumed = list(reindex(services, SYSTEM, NEW, workers=1))  # only the new photo is done
    assert sum(b.written for b in resumed) == 1
    assert list(reindex(services, SYSTEM, NEW)) == []
    assert switch_model(services, SYSTEM, NEW) == old
    assert active_model_id(services) == NEW

    switched = Services(Settings(home=services.settings.home, model_id=active_model_id(services)))
    index = switched.index()
    assert index.model_id == NEW and set(index.photo_ids.tolist()) == before | {
        max(templates_by_model(services)[old])
    }
    with services.db.session() as session:
        dims = set(
            session.scalars(sa.select(Template.dim).where(Template.model_id == NEW).distinct())
        )
        old_dims = set(
            session.scalars(sa.select(Template.dim).where(Template.model_id == old).distinct())
        )
    assert dims == {index.dim} and old_dims != dims  # never mixed
    # The running services follow the switch too: searches use only the new model.
    assert services.index().model_id == NEW and services.index().dim == index.dim
    probe = (meds_dir / "S001-04-t10_01.jpg").read_bytes()
    found = _search_gallery(switched, probe, top_k=3)
    assert found.model_id == NEW and found.candidates[0].subject_id.startswith("S001-")
    assert np.isfinite([c.score for c in found.candidates]).all()
