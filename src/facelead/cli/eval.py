"""``facelead eval``: measure accuracy the way NIST does, on LFW or on your own photos."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import Progress
from rich.table import Table

from facelead.cli.output import console, fail
from facelead.config import Settings
from facelead.errors import FaceLeadError
from facelead.eval.cache import DEFAULT_CACHE, TemplateCache

_T = TypeVar("_T")

eval_app = typer.Typer(
    help="Measure accuracy (NIST FRTE style): LFW 1:1 and 1:N, or 1:N on your own labelled photos.",
    no_args_is_help=True,
)

DEFAULT_LFW = Path("../shared/data/lfw")

CacheOption = Annotated[
    Path,
    typer.Option(
        "--cache",
        help="Template cache folder (keyed by image SHA-256 and model version; reruns reuse it).",
    ),
]
WorkersOption = Annotated[
    int, typer.Option("--workers", min=1, help="Worker processes for detection and embedding.")
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Model id to evaluate (default: FACELEAD_MODEL_ID)."),
]
JsonOption = Annotated[
    Path | None, typer.Option("--json", help="Write the results as JSON to this file.")
]
PoolOption = Annotated[
    list[str] | None,
    typer.Option(
        "--pool",
        help="Single embedders to measure beside --model, and the ones the fusion search may "
        "combine (repeatable; default: sface-flip, facenet-v2, dlib-v2). Each one not in the "
        "cache means a pass over all photos: fewer means a faster first run.",
    ),
]

LfwPoolOption = Annotated[
    list[str] | None,
    typer.Option(
        "--pool",
        help="Single embedders to measure beside --model, and the ones the fusion search may "
        "combine (repeatable; default: the model's own members, without their centres). Each "
        "one not in the cache means a pass over all photos; the full comparison of the docs "
        "adds dlib-v2 (about 25 more minutes on 2 cores).",
    ),
]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    console.print(f"JSON written to {path}")


def _summary_table(models: dict[str, dict[str, Any]], default: str) -> Table:
    table = Table(title="Accuracy (FNIR: lower is better)")
    for column in (
        "model",
        "1:1 acc.",
        "TAR@FMR=1e-3",
        "FNIR r1",
        "r5",
        "r20",
        "@FPIR .01",
        ".003",
    ):
        table.add_column(column)
    for key, model in models.items():
        v, i = model.get("verification") or {}, model["identification"]
        table.add_row(
            f"{key} (default)" if key == default else key,
            f"{v['mean_accuracy']:.4f}" if v else "—",
            f"{v['tar_at_target_fmr']:.4f}" if v else "—",
            f"{i['fnir_at_rank']['1']:.4f}",
            f"{i['fnir_at_rank']['5']:.4f}",
            f"{i['fnir_at_rank']['20']:.4f}",
            f"{i['fnir_at_fpir']['0.01']:.4f}",
            f"{i['fnir_at_fpir']['0.003']:.4f}",
        )
    return table


def _measured(run: Callable[[_Bar], _T]) -> _T:
    """Run one evaluation under a progress bar; bad input or missing data: one line, exit 2."""
    try:
        with Progress(console=console, transient=True) as progress:
            return run(_Bar(progress))
    except FaceLeadError as exc:
        fail(exc)
    except FileNotFoundError as exc:
        console.print(f"error [not_found]: {exc}", markup=False)
        raise typer.Exit(2) from exc


class _Bar:
    """Rich progress for template extraction (only shown when work is left)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("Detecting and embedding", total=total)
        self.progress.update(self.task, completed=done)


@eval_app.command("lfw")
def lfw(
    data: Annotated[
        Path,
        typer.Option("--data", help="LFW folder: images/, pairs.txt, people.txt, metadata.csv."),
    ] = DEFAULT_LFW,
    json_path: JsonOption = None,
    cache: CacheOption = DEFAULT_CACHE,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write accuracy.md and img/*.png into this folder (docs/)."),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="Write the default model's score->FMR table, <model_id>.json, into this folder.",
        ),
    ] = None,
    model: ModelOption = None,
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", help="Other model ids to show beside the default (repeatable)."),
    ] = None,
    select: Annotated[
        bool,
        typer.Option("--select/--no-select", help="Run the cross-validated fusion weight search."),
    ] = True,
    pool: LfwPoolOption = None,
    workers: WorkersOption = 2,
) -> None:
    """LFW 10-fold 1:1 verification and NIST-style 1:N, per model and fused."""
    from facelead.eval.calibration import write_calibration
    from facelead.eval.lfw import default_pool, run_lfw
    from facelead.eval.report import write_report

    model_id = model or Settings().model_id
    result = _measured(
        lambda bar: run_lfw(
            data,
            model_id,
            TemplateCache(cache),
            compare or [],
            workers,
            bar,
            select,
            tuple(pool) if pool else default_pool(model_id),
        )
    )
    body = {"command": " ".join(["facelead", *sys.argv[1:]]), **result.as_dict()}
    console.print(_summary_table(body["models"], model_id))
    if json_path:
        _write_json(json_path, body)
    if calibration:
        console.print(
            f"Calibration written to {write_calibration(result.calibration, calibration)}"
        )
    if report:
        for path in write_report(body, report):
            console.print(f"Report written: {path}")


@eval_app.command("folder")
def folder(
    csv_path: Annotated[
        Path,
        typer.Argument(
            metavar="CSV",
            help="Labelled photos: columns path,identity (+ optional demographic columns); "
            "paths relative to the CSV's folder.",
        ),
    ],
    distractors: Annotated[
        Path | None,
        typer.Option(
            "--distractors",
            help="Extra gallery images of other people: a folder (every image) or a CSV of paths.",
        ),
    ] = None,
    json_path: JsonOption = None,
    cache: CacheOption = DEFAULT_CACHE,
    model: ModelOption = None,
    workers: WorkersOption = 2,
) -> None:
    """The same 1:N protocol on your own labelled photos, to check accuracy before use."""
    from facelead.eval.folder import run_folder

    model_id = model or Settings().model_id
    body = _measured(
        lambda bar: run_folder(csv_path, model_id, TemplateCache(cache), distractors, workers, bar)
    )
    console.print(_summary_table({model_id: body["models"][model_id]}, model_id))
    console.print(json.dumps(body["counts"]))
    if json_path:
        _write_json(json_path, body)


@eval_app.command("report")
def report_from_json(
    json_path: Annotated[
        Path, typer.Argument(metavar="JSON", help="Results written by `facelead eval lfw --json`.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for accuracy.md, models.md and img/*.png.")
    ] = Path("docs"),
) -> None:
    """Regenerate the accuracy pages and plots from a saved LFW run, without recomputing."""
    from facelead.eval.report import load_json, write_report

    if not json_path.is_file():
        console.print(f"error [not_found]: no such file: {json_path}")
        raise typer.Exit(2)
    for path in write_report(load_json(json_path), out):
        console.print(f"Report written: {path}")


@eval_app.command("demographics")
def demographics(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="LFW folder: images/ and metadata.csv (sex_afifi, race_usc labels)."
        ),
    ] = DEFAULT_LFW,
    model: ModelOption = None,
    fmr: Annotated[
        float,
        typer.Option(
            "--fmr",
            min=1e-7,
            max=0.5,
            help="Target FMR of the one global 1:1 threshold every group is measured at.",
        ),
    ] = 1e-3,
    json_path: JsonOption = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Write fairness.md and img/fairness-*.png into this folder (docs/)."
        ),
    ] = None,
    resamples: Annotated[
        int,
        typer.Option(
            "--resamples", min=10, help="Bootstrap resamples over people for the 95% intervals."
        ),
    ] = 1000,
    pool: PoolOption = None,
    cache: CacheOption = DEFAULT_CACHE,
    workers: WorkersOption = 2,
) -> None:
    """Demographic differentials (NIST IR 8280) per sex and race, before/after normalisation."""
    from facelead.eval.demographics_report import write_fairness
    from facelead.eval.demographics_run import run_demographics
    from facelead.eval.demographics_stats import Bootstrap
    from facelead.eval.lfw import FUSION_POOL

    model_id = model or Settings().model_id
    result = _measured(
        lambda bar: run_demographics(
            data,
            model_id,
            TemplateCache(cache),
            fmr,
            Bootstrap(resamples=resamples),
            workers,
            bar,
            tuple(pool) if pool else FUSION_POOL,
        )
    )
    body = {"command": " ".join(["facelead", *sys.argv[1:]]), **result}
    for key, entry in body["models"].items():
        ratio = entry["verification"]["women_men_fmr_ratio"]["ratio"]
        shown = "—" if ratio is None else f"{ratio:.2f}x"
        console.print(f"{key}: women/men FMR ratio at FMR={fmr:g}: {shown}")
    if json_path:
        _write_json(json_path, body)
    if report:
        for path in write_fairness(body, report):
            console.print(f"Report written: {path}")


@eval_app.command("centre")
def centre(
    out: Annotated[
        Path,
        typer.Option("--out", help="Centre file to write (src/facelead/biometrics/centres/)."),
    ],
    data: Annotated[
        Path,
        typer.Option("--data", help="LFW folder: images/ and metadata.csv (sex_afifi labels)."),
    ] = DEFAULT_LFW,
    model: Annotated[
        str, typer.Option("--model", help="Model id whose centred members the file serves.")
    ] = "fusion-v4",
    blend: Annotated[
        float | None,
        typer.Option(
            "--blend",
            min=0.0,
            max=1.5,
            help="Weight of the women's mean in the centre (default: chosen on half the people).",
        ),
    ] = None,
    json_path: JsonOption = None,
    cache: CacheOption = DEFAULT_CACHE,
    workers: WorkersOption = 2,
) -> None:
    """Fit a template centre on LFW's labelled people and write it with its SHA-256."""
    from facelead.eval.centring import run_centre

    result = _measured(
        lambda bar: run_centre(data, model, TemplateCache(cache), out, blend, workers, bar)
    )
    body = {"command": " ".join(["facelead", *sys.argv[1:]]), **result}
    for point in body["points"]:
        console.print(
            f"blend {point['blend']:.1f}: women/men FMR ratio "
            f"{point['ratio_a_where_fitted']:.2f}x where fitted, "
            f"{point['ratio_a_other_half']:.2f}x on the other half"
        )
    console.print(f"blend {body['blend']}: {out} sha256 {body['sha256']}")
    if json_path:
        _write_json(json_path, body)
