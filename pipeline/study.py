"""A study: several models trained alike on the same data, their landscapes computed alike, and
compared (``lossvista study``, ``make study``).

A study preset (``pipeline/presets/studies/<name>.toml``, or a file) is a run preset plus the
list of models and the options of :class:`~pipeline.workflow.RunOptions` they share::

    name = "fashion-architectures"
    models = ["resnet20", "resnet20-noshort", "vgg9"]
    split = "test"                      # surfaces on the test split ...
    [options]
    max_samples = 300                   # ... on a fixed seeded subset of it
    pca_points = 21
    [compare]                           # optional: how lossvista compare counts minima
    persistence = 0.05                  # in loss units (default: options.persistence x each range)
    [train]                             # shared by every model (the model is the study's)
    dataset = "fashion-mnist"
    epochs = 5
    [random_grid]
    x = "-1:1:21"
    y = "-1:1:21"

Every model's run is a run directory ``OUT/<model>`` that :func:`~pipeline.workflow.run_pipeline`
completes (training resumes from its last checkpoint, surfaces from their finished chunks);
``OUT/study.json`` records each finished model, so a rerun after an interruption goes on with
the first unfinished one. Then, for each plane, ``lossvista compare`` across the models
(``OUT/compare_<plane>.{md,json,png}``) and the same pictures of every model side by side
(``OUT/side_by_side_<plane>_<view>.png``).
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import RunConfig, check_float, preset_names, read_preset, run_config_from_dict
from .errors import LossvistaError, ParameterError, param

__all__ = ["Study", "StudyResult", "load_study", "study_names", "run_study", "SIDE_BY_SIDE_VIEWS"]

SIDE_BY_SIDE_VIEWS = ("3d_surface", "2d_contours")  # the views put side by side for every plane
STUDY_FORMAT = 1


@dataclass(frozen=True)
class Study:
    """What a study computes: one :class:`RunConfig` per model, and how the stages run."""

    name: str
    runs: tuple[RunConfig, ...]
    options: Any  # RunOptions
    description: str = ""
    persistence: float | None = None  # compare's threshold in loss units; None: options.persistence of each range
    delta: float = 0.1  # compare's width at min + delta

    @property
    def models(self) -> list[str]:
        return [r.train.model for r in self.runs]


@dataclass
class StudyResult:
    root: Path
    comparisons: dict[str, dict[str, Path]] = field(default_factory=dict)  # plane -> {"markdown", "json", "png"}
    pictures: list[Path] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)  # study.json


def study_names() -> list[str]:
    """Names of the bundled study presets (``pipeline/presets/studies/*.toml``)."""
    return preset_names("presets/studies")


def load_study(name: str) -> Study:
    """A bundled study preset by name, or a TOML file by path."""
    from .models import MODELS
    from .usercode import is_spec
    from .workflow import RunOptions

    path = Path(name)
    data = read_preset(name, "presets/studies")
    models = data.pop("models", None)
    if not isinstance(models, list) or len(models) < 2 or not all(isinstance(m, str) for m in models):
        raise ParameterError(f"study {name!r}: models must be a list of at least two model names; got {models!r}")
    if len(set(models)) != len(models):
        raise ParameterError(f"study {name!r}: models must be different; got {models}")
    options = data.pop("options", {})
    known = {f.name for f in dataclasses.fields(RunOptions)} - {"restart_training", "page"}
    if not isinstance(options, dict) or set(options) - known:
        raise ParameterError(f"study {name!r}: unknown [options] keys {sorted(set(options) - known)}; "
                             f"allowed: {sorted(known)}")
    if "planes" in options:
        options["planes"] = tuple(options["planes"])
    compare = data.pop("compare", {})
    if not isinstance(compare, dict) or set(compare) - {"persistence", "delta"}:
        raise ParameterError(f"study {name!r}: [compare] takes persistence and delta; got {compare!r}")
    if "train" in data and "model" in data["train"]:
        raise ParameterError(f"study {name!r}: [train] must not name a model (the study's models list does)")
    try:
        for key, value in compare.items():
            check_float(f"[compare] {key}", value, 0, low_open=True)
        base = run_config_from_dict(data, default_name=path.stem, other_keys=("models", "options", "compare"))
        unknown = [m for m in models if m not in MODELS and not is_spec(m)]
        if unknown:  # before the first model trains, not when the study reaches this one
            raise ValueError(f"unknown models {unknown}; each must be one of {', '.join(map(repr, MODELS))} "
                             f"or 'package.module:factory'")
        runs = tuple(dataclasses.replace(base, name=m, train=dataclasses.replace(base.train, model=m)) for m in models)
        return Study(name=base.name, runs=runs, options=RunOptions(**options, page=False),
                     description=base.description, **{k: float(v) for k, v in compare.items()})
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"study {name!r}: {exc}") from None


def _record(out: Path) -> dict[str, Any]:
    from .rundir import read_json

    path = out / "study.json"
    if not path.is_file():
        return {}
    record = read_json(path)
    if not isinstance(record, dict) or record.get("format") != STUDY_FORMAT:
        raise LossvistaError(f"{path} is not a study record of this version; choose another {param('out')}")
    return record


def _identity(cfg: RunConfig, options: Any) -> dict[str, Any]:
    """What a model's finished run was computed with (a changed preset recomputes it)."""
    import json

    return json.loads(json.dumps({"run": dataclasses.asdict(cfg), "options": dataclasses.asdict(options)},
                                 default=str))


def run_study(study: Study, out: str | os.PathLike, *, notice: Callable[[str], None] | None = None,
              views: tuple[str, ...] = SIDE_BY_SIDE_VIEWS) -> StudyResult:
    """Train and draw every model of ``study`` into ``out/<model>`` (resuming), then compare them."""
    from .atomic import write_json
    from .compare import compare_runs, write_comparison
    from .workflow import run_pipeline

    say = notice or (lambda message: None)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    record = _record(root) or {"format": STUDY_FORMAT, "name": study.name, "description": study.description,
                               "models": {}, "sessions": []}
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": 0.0, "computed": []}
    record["sessions"].append(session)
    t_start = time.perf_counter()
    for k, cfg in enumerate(study.runs, 1):
        model = cfg.train.model
        done = record["models"].get(model, {})
        identity = _identity(cfg, study.options)
        if done.get("complete") and done.get("identity") == identity and (root / model / "run.json").is_file():
            say(f"[{k}/{len(study.runs)}] {model}: finished earlier, kept")
            continue
        say(f"[{k}/{len(study.runs)}] {model}: training and landscapes")
        t0 = time.perf_counter()
        result = run_pipeline(cfg, root / model, study.options, notice=notice)
        record["models"][model] = {"complete": True, "identity": identity, "run": model,
                                   "seconds": round(time.perf_counter() - t0, 1), "stages": result.seconds,
                                   "test_accuracy": result.summary.get("test_accuracy"),
                                   "planes": {p: result.summary.get(p) for p in study.options.planes}}
        session["computed"].append(model)
        session["seconds"] = round(time.perf_counter() - t_start, 1)
        write_json(root / "study.json", record)
    outcome = StudyResult(root)
    runs = [root / cfg.train.model for cfg in study.runs]
    for plane in study.options.planes:
        if study.persistence is None:
            summaries = compare_runs(runs, plane=plane, persistence=study.options.persistence, relative=True,
                                     delta=study.delta)
        else:
            summaries = compare_runs(runs, plane=plane, persistence=study.persistence, delta=study.delta)
        outcome.comparisons[plane] = write_comparison(summaries, root)
        for view in views:
            picture = side_by_side(runs, plane, view, root / f"side_by_side_{plane}_{view}.png")
            if picture is not None:
                outcome.pictures.append(picture)
    session["seconds"] = round(time.perf_counter() - t_start, 1)
    record["wall_seconds"] = round(sum(s["seconds"] for s in record["sessions"]), 1)
    write_json(root / "study.json", record)
    outcome.record = record
    return outcome


def side_by_side(runs: list[Path], plane: str, view: str, out: Path) -> Path | None:
    """The picture ``<plane>_<view>.png`` of every run in one row, titled by model and test accuracy
    (ParaView's picture where there is one, else the quick look); None when no run has it."""
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .atomic import write_png
    from .rundir import RunDir

    found = []
    for run in runs:
        rd = RunDir(run)
        for folder in (rd.renders, rd.quicklooks):
            if (folder / f"{plane}_{view}.png").is_file():
                found.append((run, folder / f"{plane}_{view}.png"))
                break
    if not found:
        return None
    fig = Figure(figsize=(4.0 * len(found), 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (run, path) in zip(fig.subplots(1, len(found), squeeze=False)[0], found):
        ax.imshow(mpimg.imread(path))
        ax.set_axis_off()
        history = RunDir(run).read_run().get("history") or []
        acc = history[-1].get("test_accuracy") if history else None
        ax.set_title(run.name + (f" (test accuracy {acc:.1%})" if isinstance(acc, float) else ""), fontsize=10)
    fig.suptitle(f"{plane} plane, {view.replace('_', ' ')}", fontsize=11)
    return write_png(out, lambda tmp: fig.savefig(tmp, dpi=120))
