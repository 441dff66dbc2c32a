"""``facelead report transparency``: the public, aggregate report for oversight.

One audited action (``report.transparency``, auditors and supervisors): read
the period's searches, refusals, misuse findings, removals and retention
deletions as plain facts (``store.transparency``, the audit log), count and
suppress them (``domain.transparency``), render one file, and record its
SHA-256 in the event. The figures of the current face model are copied from
the evaluation results (``bench/results``) when they exist; where they do
not, the report says "not measured yet" and prints no number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from facelead.audit import log
from facelead.audit.chain import AuditRecord, verify_chain
from facelead.audit.report import SEARCH_SUBMIT, ReportConfig
from facelead.audit.report import build_report as misuse_report
from facelead.domain.access import Action, Actor
from facelead.domain.transparency import (
    NOT_MEASURED,
    Activity,
    ModelFigures,
    SearchFact,
    TransparencyReport,
    build_report,
    check_period,
    classify_outcome,
)
from facelead.errors import InputError
from facelead.services.audit import _report_events, trusted_public_key
from facelead.services.context import ACTIVE_MODEL, Services
from facelead.services.uow import perform
from facelead.store import lifecycle as lifecycle_repo
from facelead.store import transparency as repo

FORMATS = ("html", "csv", "pdf")
RESULTS_DIR = Path(__file__).resolve().parents[3] / "bench" / "results"
"""Where ``facelead eval`` writes its JSON in a source checkout."""
ACCURACY_FILE = "accuracy-lfw.json"
FAIRNESS_FILE = "fairness-lfw.json"
MAX_FAIRNESS_FIGURES = 40


@dataclass(frozen=True)
class TransparencyFile:
    report: TransparencyReport
    fmt: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def transparency_report(
    services: Services,
    actor: Actor,
    start: dt.date,
    end: dt.date,
    fmt: str = "html",
    *,
    results_dir: Path | None = None,
) -> TransparencyFile:
    """The report for the inclusive UTC period [start, end], rendered as ``fmt``."""
    from facelead.services.transparency_render import render

    with perform(
        services, actor, Action.REPORT_TRANSPARENCY, object_type="transparency_report"
    ) as scope:
        scope.details.update(start=start.isoformat(), end=end.isoformat(), format=fmt)
        if fmt not in FORMATS:
            raise InputError(f"report format must be one of {', '.join(FORMATS)}", code="format")
        check_period(start, end)
        report = _build(services, scope.session, start, end, results_dir or RESULTS_DIR)
        file = TransparencyFile(report, fmt, render(report, fmt))
        scope.details.update(sha256=file.sha256, bytes=len(file.data))
        return file


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    first = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    return first, dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def _build(
    services: Services, session: Session, start: dt.date, end: dt.date, results_dir: Path
) -> TransparencyReport:
    since, until = _bounds(start, end)
    settings = services.settings
    model_id = lifecycle_repo.get_setting(session, ACTIVE_MODEL) or settings.model_id
    integrity = _integrity(services, session)  # read before the events, as `audit verify` does
    events = _report_events(session, since, until, dt.timedelta(days=ReportConfig().baseline_days))
    activity = Activity(
        searches=list(_search_facts(session, since, until)),
        refusal_codes=_refusal_codes(events, since, until),
        findings=_findings(events, since, until),
        removals=repo.removal_kinds_between(session, since, until),
        retention=repo.retention_rules_between(session, since, until),
    )
    return build_report(
        start,
        end,
        activity,
        purposes=settings.search_purposes,
        offences=settings.offence_categories,
        model=model_figures(model_id, results_dir),
        integrity=integrity,
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )


def _search_facts(session: Session, since: dt.datetime, until: dt.datetime) -> Iterator[SearchFact]:
    for row in repo.searches_between(session, since, until):
        hours = None
        if row.first_review_at is not None:
            hours = (row.first_review_at - row.created_at).total_seconds() / 3600
        yield SearchFact(
            created_at=row.created_at,
            purpose=row.purpose,
            offence=row.offence_category,
            outcome=classify_outcome(row.status, row.outcome, row.status_before),
            review_hours=hours,
        )


def _refusal_codes(events: list[AuditRecord], since: dt.datetime, until: dt.datetime) -> list[str]:
    """The code of each refused search request in the period (each event once)."""
    unique = {r.seq: r for r in events}
    return [
        r.outcome.removeprefix("refused:")
        for r in unique.values()
        if r.action == SEARCH_SUBMIT
        and r.outcome.startswith("refused:")
        and since <= r.when < until
    ]


def _findings(
    events: list[AuditRecord], since: dt.datetime, until: dt.datetime
) -> list[tuple[str, str, int]]:
    """How many findings each rule of the misuse report (``facelead audit report``) makes."""
    report = misuse_report(events, since, until, ReportConfig())
    return [(r.rule.id, r.rule.title, len(r.findings)) for r in report.results]


def _integrity(services: Services, session: Session) -> str:
    checkpoints = log.load_checkpoints(session)
    head = log.current_head(session)
    key = trusted_public_key(services)
    result = verify_chain(log.iter_records(session), checkpoints, key, expected_head=head)
    if result.first is None:
        return (
            f"verified: all {result.events_checked} events of the audit log chain correctly "
            f"and match {result.checkpoints_checked} signed checkpoints"
        )
    return (
        f"TAMPERED: the audit log fails verification at event {result.first.seq} "
        f"({result.first.kind.value}); figures from the log after it are not vouched for"
    )


def _load(path: Path) -> tuple[Mapping[str, Any] | None, str]:
    if not path.is_file():
        return None, NOT_MEASURED
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, f"{NOT_MEASURED} ({path.name} could not be read)"
    if not isinstance(data, Mapping):
        return None, f"{NOT_MEASURED} ({path.name} is not a results object)"
    return data, path.name


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _accuracy(data: Mapping[str, Any], model_id: str) -> tuple[tuple[str, str], ...]:
    """The headline figures of ``facelead eval lfw --json`` for ``model_id``."""
    entry = _dig(data, "models", model_id)
    wanted = [
        ("1:1 accuracy on LFW (10-fold mean)", ("verification", "mean_accuracy")),
        ("1:1 true accept rate at false match rate 0.1%", ("verification", "tar_at_target_fmr")),
        ("1:N miss rate (FNIR) at rank 1", ("identification", "fnir_at_rank", "1")),
        ("1:N miss rate (FNIR) at false positive rate (FPIR) 1%",
         ("identification", "fnir_at_fpir", "0.01")),
    ]  # fmt: skip
    return tuple(
        (label, f"{100 * number:.2f}%")
        for label, keys in wanted
        if (number := _number(_dig(entry, *keys))) is not None
    )


_DIFFERENTIALS = (
    ("verification", "fmr", "1:1 false match rate"),
    ("verification", "fnmr", "1:1 false non-match rate"),
    ("identification", "fpir", "1:N false positive rate"),
    ("identification", "fnir_rank1", "1:N miss rate at rank 1"),
)


def _ratio_text(entry: object) -> str | None:
    """ "2.19x (95% CI 1.80-2.65); verdict" from a ratio entry of ``facelead eval demographics``."""
    ratio = _number(_dig(entry, "ratio"))
    if ratio is None:
        return None
    text = f"{ratio:.2f}x"
    ci = _dig(entry, "ratio_ci") or _dig(entry, "ci")
    if isinstance(ci, list) and len(ci) == 2 and all(_number(v) is not None for v in ci):
        text += f" (95% CI {float(ci[0]):.2f}-{float(ci[1]):.2f})"
    verdict = _dig(entry, "verdict")
    return f"{text}; {verdict}" if isinstance(verdict, str) and verdict else text


def _fairness(data: Mapping[str, Any], model_id: str) -> tuple[tuple[str, str], ...]:
    """The differentials measured for ``model_id``: each group's rate as a ratio to the lowest."""
    entry = _dig(data, "models", model_id)
    found = []
    if (women_men := _ratio_text(_dig(entry, "verification", "women_men_fmr_ratio"))) is not None:
        found.append(("1:1 false match rate, women to men", women_men))
    for side, metric, title in _DIFFERENTIALS:
        for family in ("sex", "race"):
            groups = _dig(entry, side, family, metric, "groups")
            for group, rate in groups.items() if isinstance(groups, Mapping) else ():
                if (text := _ratio_text(rate)) is not None:
                    found.append((f"{title}, {family} {group}, to the lowest group", text))
    return tuple(found[:MAX_FAIRNESS_FIGURES])


def model_figures(model_id: str, results_dir: Path = RESULTS_DIR) -> ModelFigures:
    """The current model's accuracy and fairness figures, only as measured; never made up."""
    figures: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {}
    for name, file, pick, how in (
        ("accuracy", ACCURACY_FILE, _accuracy, "facelead eval lfw"),
        ("fairness", FAIRNESS_FILE, _fairness, "NIST IR 8280 method, facelead eval demographics"),
    ):
        data, source = _load(results_dir / file)
        source = f"{source} (LFW; {how})" if data is not None else source
        found = pick(data, model_id) if data is not None else ()
        if data is not None and not found:
            source = f"{NOT_MEASURED} for model {model_id} ({file} has no figures for it)"
        figures[name] = found, source
    return ModelFigures(
        model_id,
        accuracy=figures["accuracy"][0],
        accuracy_source=figures["accuracy"][1],
        fairness=figures["fairness"][0],
        fairness_source=figures["fairness"][1],
    )
