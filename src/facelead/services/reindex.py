"""Re-templating: build templates of a new model next to the old ones, then switch at once.

Workers (processes, the new model loaded once each) compute templates from
the stored images, reusing the face found at enrolment; the parent writes
them in batches, one audited transaction per batch. Re-running picks up
where it stopped (only photos without a template of the new model are
done). ``switch_model`` sets the ``active_model`` row in one transaction and
only when every photo searchable under the current model also has a
template of the new one; until then searches keep using the old model, and
they never mix the two: one index per model, one model per search.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelead.biometrics.fusion import model_config
from facelead.biometrics.types import Face
from facelead.config import Settings
from facelead.domain.access import Action, Actor
from facelead.errors import ConflictError, FaceLeadError
from facelead.services.context import ACTIVE_MODEL, Services
from facelead.services.uow import perform
from facelead.store import gallery as gallery_repo
from facelead.store import lifecycle as repo

BATCH = 16

Job = tuple[int, str, list[float], Any]


def active_model_id(services: Services) -> str:
    """The model every search and enrolment must use: the switched-to one, else the setting."""
    return services.active_model_id()


@dataclass(frozen=True)
class ReindexBatch:
    written: int
    refused: dict[int, str]  # photo id -> refusal code


def _template(services: Services, job: Job) -> tuple[int, Any, str | None]:
    photo_id, sha, box, landmarks = job
    try:
        pixels = services.decode(services.images.get(sha)).pixels
        face = Face(
            (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            np.asarray(landmarks, dtype=np.float32).reshape(5, 2),
            1.0,
        )
        pipeline = services.pipeline_for(services.settings.model_id)  # the target model
        return photo_id, pipeline.analyse(pixels, face).template, None
    except FaceLeadError as exc:
        return photo_id, None, exc.code


_WORKER: dict[str, Services] = {}


def _worker_init(settings: dict[str, Any]) -> None:
    import cv2

    cv2.setNumThreads(1)
    services = Services(Settings(**settings))
    services.pipeline_for(services.settings.model_id)  # load the new model once per process
    _WORKER["services"] = services


def _worker_batch(jobs: list[Job]) -> list[tuple[int, Any, str | None]]:
    return [_template(_WORKER["services"], job) for job in jobs]


def _compute(
    services: Services, model_id: str, jobs: list[Job], workers: int
) -> Iterator[list[tuple[int, Any, str | None]]]:
    batches = [jobs[i : i + BATCH] for i in range(0, len(jobs), BATCH)]
    settings = {**services.settings.model_dump(mode="python"), "model_id": model_id}
    if workers <= 1:
        local = Services(Settings(**settings))
        for batch in batches:
            yield [_template(local, job) for job in batch]
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, context, initializer=_worker_init, initargs=(settings,)
    ) as pool:
        yield from pool.map(_worker_batch, batches)


def reindex(
    services: Services, actor: Actor, model_id: str, workers: int = 1
) -> Iterator[ReindexBatch]:
    """Template every searchable photo under ``model_id``; yields after each committed batch.

    The run is authorised and audited (with what is left to do) before any
    model loads, so a refused user costs nothing and an interrupted run
    still shows in the log.
    """
    model_config(model_id)  # unknown model ids are refused before any work
    with perform(services, actor, Action.GALLERY_REINDEX, object_type="reindex") as scope:
        jobs = repo.photos_missing_template(scope.session, model_id)
        scope.details.update(model_id=model_id, photos_missing=len(jobs), workers=workers)
    for results in _compute(services, model_id, jobs, max(1, min(workers, len(jobs)))):
        yield _write(services, actor, model_id, results)


def _write(
    services: Services, actor: Actor, model_id: str, results: list[tuple[int, Any, str | None]]
) -> ReindexBatch:
    refused = {pid: code for pid, _, code in results if code is not None}
    written = 0
    with perform(services, actor, Action.GALLERY_REINDEX, object_type="templates") as scope:
        for photo_id, vector, code in sorted(results, key=lambda r: r[0]):  # lock order: by id
            photo = repo.live_photo_for_update(scope.session, photo_id)
            if code is None and photo is not None:  # removed meanwhile: nothing to add
                gallery_repo.add_template(scope.session, photo, model_id, vector)
                written += 1
        scope.details.update(
            model_id=model_id, templates=written, refused=sorted(set(refused.values()))
        )
    return ReindexBatch(written, refused)


def switch_model(
    services: Services, actor: Actor, model_id: str, allow_missing: bool = False
) -> str:
    """Make ``model_id`` the active model, atomically; refused while templates are missing."""
    model_config(model_id)
    with perform(services, actor, Action.GALLERY_REINDEX, object_type="gallery_settings") as scope:
        current = repo.get_setting(scope.session, ACTIVE_MODEL) or services.settings.model_id
        missing = repo.count_missing(scope.session, current, model_id)
        scope.details.update(previous=current, model_id=model_id, missing=missing)
        if missing and not allow_missing:
            raise ConflictError(
                f"{missing} photos searchable under {current} have no {model_id} template yet: "
                "run the reindex again",
                code="reindex_incomplete",
                missing=missing,
            )
        repo.set_setting(scope.session, ACTIVE_MODEL, model_id, actor.username)
    return current
