"""The stages of a run that are not a package of their own: directions, trajectory, pictures, export."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LossvistaError, ParameterError, param
from ..render.pictures import BACKENDS, render_pictures
from ..rundir import RunDir

if TYPE_CHECKING:
    from ..run import Run

log = logging.getLogger(__name__)

__all__ = ["make_directions", "make_trajectory", "render_pictures", "export", "DIRECTION_KINDS", "BACKENDS",
           "EXPORT_FORMATS"]

DIRECTION_KINDS = ("random", "pca", "interp", "hessian")
EXPORT_FORMATS = ("ply", "obj", "stl", "html")  # the mesh formats of pipeline.vtkio, and the page


def _epochs(run: RunDir) -> list[int]:
    epochs = run.epochs()
    if not epochs:
        raise LossvistaError(f"{run.checkpoints_dir} holds no epoch_*.pt checkpoints; train first")
    return epochs


def _epoch(run: RunDir, value: int | None, name: str, default: int) -> int:
    epochs = _epochs(run)
    e = default if value is None else value
    if e not in epochs:
        raise ParameterError(f"{param(name)} must be one of the epochs {run.epochs_text()} in "
                             f"{run.checkpoints_dir}; got {e}")
    return e


def _warn_gaps(opened: Run, what: str) -> None:
    """Name the epochs missing between the checkpoints of a run lossvista trained: training writes
    one every epoch, so a hole is a lost file. An imported or recorded run holds the checkpoints its
    own loop saved (every 5 steps, say); their spacing is the user's choice, not a gap."""
    if opened.imported:
        return
    missing = opened.dir.missing_epochs()
    if missing:
        from ..rundir import ranges

        log.warning("%s has no checkpoint of epoch%s %s: %s skips %s", opened.dir.checkpoints_dir,
                    "s" if len(missing) > 1 else "", ranges(missing, sep=".."), what,
                    "them" if len(missing) > 1 else "it")


def make_directions(run: RunDir, kind: str, *, norm: str | None = None, ignore: str | None = None,
                    dir_type: str | None = None, seed: int = 0, ndim: int = 2, epoch: int | None = None,
                    from_epoch: int | None = None, to_epoch: int | None = None,
                    out: str | Path | None = None, hessian: Any = None) -> tuple[Any, Path]:
    """Directions of ``kind`` for ``run``, saved to ``out`` (default ``RUN/directions/<kind>.pt``).

    random: Gaussian directions around checkpoint ``epoch`` (default the last), ``norm`` (default
    filter), ``ignore`` (default biasbn), ``dir_type`` (default weights), ``seed``, ``ndim``.
    pca: the top two (``ndim`` 3: three) principal components of the checkpoints up to ``epoch``
    minus that checkpoint. interp: the 1D direction from ``from_epoch`` (default 0) to
    ``to_epoch`` (default the last). hessian: the top two eigenvectors of the Hessian of the run's
    loss on its train split at checkpoint ``epoch`` (default the last), ``norm`` none (default) or
    filter, ``ignore``, ``seed``; ``hessian`` a :class:`pipeline.directions.hessian.HessianOptions`
    (tolerance, iterations, samples, device). Three directions (a volume's) go to
    ``directions/<kind>_3d.pt``.
    Returns ``(directions, path)``.
    """
    from ..directions import interpolation_direction, pca_directions, random_directions
    from ..run import Run

    if kind not in DIRECTION_KINDS:
        raise ParameterError(f"{param('kind')} must be one of {', '.join(map(repr, DIRECTION_KINDS))}; got {kind!r}")
    opened = Run(run)
    epochs = _epochs(run)
    model_name = opened.model_name
    ignore = ignore or "biasbn"
    skeleton = opened.skeleton

    if kind == "random":
        model, centre = opened.build_model(_epoch(run, epoch, "epoch", epochs[-1]))
        d = random_directions(model, norm=norm or "filter", ignore=ignore, dir_type=dir_type or "weights",
                              seed=seed, ndim=ndim, centre=run.checkpoint(centre), model_name=model_name)
    elif kind == "pca":
        centre = _epoch(run, epoch, "epoch", epochs[-1])
        path = [run.checkpoint(e) for e in epochs if e <= centre]
        _warn_gaps(opened, "the PCA of the trajectory")
        if ndim not in (2, 3):
            raise ParameterError(f"{param('ndim')} must be 2 or 3 for PCA directions; got {ndim!r}")
        d = pca_directions(path, centre=run.checkpoint(centre), ignore=ignore, dir_type=dir_type or "weights",
                           model=skeleton(), model_name=model_name, ndim=ndim)
    elif kind == "hessian":
        from ..directions.hessian import HessianOptions, hessian_directions

        if ndim != 2:
            raise ParameterError(f"{param('ndim')} must be 2 for Hessian directions; got {ndim!r}")
        opts = hessian or HessianOptions()
        model, centre = opened.build_model(_epoch(run, epoch, "epoch", epochs[-1]))
        data = opened.data("train")
        d = hessian_directions(model, data, loss=opened.loss(), ignore=ignore, norm=norm or "none", seed=seed,
                               tol=opts.tol, max_iter=opts.max_iter, max_samples=opts.max_samples,
                               sample_seed=opts.sample_seed, device=opts.device, rise=_rise(opened, data),
                               centre=run.checkpoint(centre), model_name=model_name)
    else:
        e1 = _epoch(run, from_epoch, "from_epoch", epochs[0])
        e2 = _epoch(run, to_epoch, "to_epoch", epochs[-1])
        if e1 == e2:
            raise ParameterError(f"{param('from_epoch')} and {param('to_epoch')} must be different epochs; "
                                 f"got {e1} for both")
        d = interpolation_direction(run.checkpoint(e1), run.checkpoint(e2), dir_type=dir_type or "states",
                                    model=skeleton(), model_name=model_name)
    return d, d.save(out or run.directions(kind, d.ndim))


def _rise(opened: Any, data: Any) -> float:
    """The loss of a guess that knows nothing on ``data`` (:func:`pipeline.display.chance_loss`): the
    best constant prediction's loss (regression losses, data in memory), else ``ln(num_classes)``."""
    from ..display import chance_loss
    from ..engine.points import as_objective
    from ..surface.job import _baseline

    return chance_loss({"baseline_loss": _baseline(as_objective(opened.loss()), data),
                        "num_classes": opened.num_classes})


def make_trajectory(run: RunDir, directions_file: str | Path, *, split: str = "train",
                    max_samples: int | None = None, sample_seed: int = 0, epoch: int | None = None,
                    device: str | None = "cpu", with_loss: bool = True,
                    out: str | Path | None = None, compile: str = "auto") -> tuple[Any, Path]:
    """Project ``run``'s checkpoints onto the directions of ``directions_file`` around the centre
    checkpoint and write the path to ``out`` (default ``RUN/trajectory_<kind>.vtp``; for three
    directions ``RUN/trajectory_volume_<kind>.vtp``).

    The centre is ``epoch``, else the directions' centre, else the last epoch. With ``with_loss``
    each checkpoint's loss and the loss at its projected point are evaluated on ``split`` (or its
    seeded subset of ``max_samples``), compiled or not by ``compile`` ('auto', 'on', 'off':
    :class:`~pipeline.engine.EvalConfig`). Returns ``(trajectory, path)``.
    """
    from ..atomic import check_writable
    from ..directions import Directions
    from ..rundir import volume_kind
    from ..engine import EvalConfig, resolve_device
    from ..run import Run
    from ..trajectory import project_trajectory
    from ..vtkio import write_trajectory

    if split not in ("train", "test"):
        raise ParameterError(f"{param('split')} must be one of 'train', 'test'; got {split!r}")
    if max_samples is not None and max_samples < 1:
        raise ParameterError(f"{param('max_samples')} must be a positive integer; got {max_samples}")
    EvalConfig(compile=compile)  # the engine's check, before any work
    directions = Directions.load(directions_file)
    opened = Run(run)
    run.check_directions(directions)
    kind = volume_kind(directions.kind) if directions.ndim == 3 else directions.kind  # a volume's path
    out = check_writable(out or run.trajectory(kind), make_parents=True)  # before the evaluations
    epochs = _epochs(run)
    centre = epoch if epoch is not None else directions.centre_epoch
    centre = epochs[-1] if centre is None else centre
    if centre not in epochs:
        source = param("epoch") if epoch is not None else "from the directions"
        raise LossvistaError(f"centre epoch {centre} ({source}) is not among the epochs {run.epochs_text()} "
                             f"in {run.checkpoints_dir}")
    model = data = config = None
    if with_loss:
        dev = resolve_device(device)
        data = opened.data(split).subset(max_samples, seed=sample_seed)
        model, _ = opened.build_model(centre, device=dev)
        config = EvalConfig(device=str(dev), compile=compile)
    _warn_gaps(opened, "the path")
    traj = project_trajectory(run.checkpoints(), directions, run.checkpoint(centre), model=model, data=data,
                              loss=opened.loss(), config=config)
    traj.meta.update({"run": str(run.root), "split": split if with_loss else None,
                      "num_samples": None if data is None else data.n, "max_samples": max_samples,
                      "sample_seed": sample_seed, "directions_file": str(directions_file),
                      "dataset": opened.dataset_name, "loss_name": opened.loss().label, "unit": opened.unit})
    return traj, write_trajectory(out, traj)


def compute_own_surface(request: Any) -> Any:
    """:func:`~pipeline.surface.compute_surface` of a file the workflow owns (a run's planes and
    volumes, evolve's planes): chunks an interrupted computation with other settings left (another
    grid, retrained checkpoints) are useless to this one; they are discarded with a warning, where
    ``lossvista surface`` refuses them (a file the user named may be theirs to resume)."""
    from ..surface import ConfigMismatchError, ResumeOptions, compute_surface

    try:
        return compute_surface(request, ResumeOptions())
    except ConfigMismatchError as exc:
        log.warning("warning: %s; discarded, the computation starts over", str(exc).split("; pass", 1)[0])
        return compute_surface(request, ResumeOptions(restart=True))


def export(source: str | Path, format: str | None = None, *, out: str | Path | None = None, array: str = "loss",
           scale: float | None = None, log: bool = False) -> Path:
    """Write ``source`` as ``format`` and return the path written.

    ``html``: the self-contained page (:func:`pipeline.render.page.export_page`) of a run
    directory (default ``RUN/index.html``) or of one surface file; ``array`` colours it first.
    ``ply``, ``obj``, ``stl``: the warped surface of a ``.vts`` as a mesh
    (:func:`pipeline.vtkio.export_file`: ``array``, ``scale``, ``log``). ``format=None``: the
    suffix of ``out`` (``.htm`` is html), else html for a run directory.
    """
    if not Path(source).exists():
        raise LossvistaError(f"{str(source)!r} not found: no run directory or surface file there to export")
    if format is None:
        suffix = Path(out).suffix.lower().lstrip(".") if out else ""
        if suffix in EXPORT_FORMATS or suffix == "htm":
            format = "html" if suffix == "htm" else suffix
        elif Path(source).is_dir():
            format = "html"
        else:
            raise ParameterError(f"{param('format')} must be given ({', '.join(EXPORT_FORMATS)}): neither the source "
                                 f"{str(source)!r} nor {param('out')} tells it")
    fmt = str(format).lower()
    if fmt not in EXPORT_FORMATS:
        raise ParameterError(f"{param('format')} must be one of {', '.join(EXPORT_FORMATS)}; got {format!r}")
    if fmt != "html" and Path(source).is_dir():
        raise ParameterError(f"a {fmt} mesh is made of one surface file (e.g. {Path(source) / 'surface_random.vts'}); "
                             f"a run directory exports as {param('format')} html")
    if fmt != "html":
        from ..vtkio import export_file

        return export_file(source, fmt, out=out, array=array, scale=scale, log=log)
    for name, value, unset in (("scale", scale, None), ("log", log, False)):
        if value != unset:
            raise ParameterError(f"{param(name)} shapes a mesh (ply, obj, stl); the html page takes none; "
                                 f"got {value!r}")
    from ..render.page import export_page

    return export_page(source, out, array=array)
