"""The stages of a run that are not a package of their own: directions, trajectory, pictures, export."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from ..display import PLANES, QUICKLOOK_VIEWS
from ..errors import LossvistaError, ParameterError, param
from ..rundir import RunDir, volume_kind

log = logging.getLogger(__name__)

__all__ = ["make_directions", "make_trajectory", "render_pictures", "export", "DIRECTION_KINDS", "BACKENDS",
           "EXPORT_FORMATS"]

DIRECTION_KINDS = ("random", "pca", "interp")
BACKENDS = ("auto", "paraview", "pyvista", "none")
EXPORT_FORMATS = ("ply", "obj", "stl", "html")  # the mesh formats of pipeline.vtkio, and the page
Notice = Callable[[str], None]


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


def _warn_gaps(run: RunDir, what: str) -> None:
    missing = run.missing_epochs()
    if missing:
        from ..rundir import ranges

        log.warning("%s has no checkpoint of epoch%s %s: %s skips %s", run.checkpoints_dir,
                    "s" if len(missing) > 1 else "", ranges(missing, sep=".."), what,
                    "them" if len(missing) > 1 else "it")


def make_directions(run: RunDir, kind: str, *, norm: str | None = None, ignore: str | None = None,
                    dir_type: str | None = None, seed: int = 0, ndim: int = 2, epoch: int | None = None,
                    from_epoch: int | None = None, to_epoch: int | None = None,
                    out: str | Path | None = None) -> tuple[Any, Path]:
    """Directions of ``kind`` for ``run``, saved to ``out`` (default ``RUN/directions/<kind>.pt``).

    random: Gaussian directions around checkpoint ``epoch`` (default the last), ``norm`` (default
    filter), ``ignore`` (default biasbn), ``dir_type`` (default weights), ``seed``, ``ndim``.
    pca: the top two (``ndim`` 3: three) principal components of the checkpoints up to ``epoch``
    minus that checkpoint. interp: the 1D direction from ``from_epoch`` (default 0) to
    ``to_epoch`` (default the last). Three directions (a volume's) go to ``directions/<kind>_3d.pt``.
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
        _warn_gaps(run, "the PCA of the trajectory")
        if ndim not in (2, 3):
            raise ParameterError(f"{param('ndim')} must be 2 or 3 for PCA directions; got {ndim!r}")
        d = pca_directions(path, centre=run.checkpoint(centre), ignore=ignore, dir_type=dir_type or "weights",
                           model=skeleton(), model_name=model_name, ndim=ndim)
    else:
        e1 = _epoch(run, from_epoch, "from_epoch", epochs[0])
        e2 = _epoch(run, to_epoch, "to_epoch", epochs[-1])
        if e1 == e2:
            raise ParameterError(f"{param('from_epoch')} and {param('to_epoch')} must be different epochs; "
                                 f"got {e1} for both")
        d = interpolation_direction(run.checkpoint(e1), run.checkpoint(e2), dir_type=dir_type or "states",
                                    model=skeleton(), model_name=model_name)
    return d, d.save(out or run.directions(kind, d.ndim))


def make_trajectory(run: RunDir, directions_file: str | Path, *, split: str = "train",
                    max_samples: int | None = None, sample_seed: int = 0, epoch: int | None = None,
                    device: str | None = "cpu", with_loss: bool = True,
                    out: str | Path | None = None) -> tuple[Any, Path]:
    """Project ``run``'s checkpoints onto the directions of ``directions_file`` around the centre
    checkpoint and write the path to ``out`` (default ``RUN/trajectory_<kind>.vtp``; for three
    directions ``RUN/trajectory_volume_<kind>.vtp``).

    The centre is ``epoch``, else the directions' centre, else the last epoch. With ``with_loss``
    each checkpoint's loss and the loss at its projected point are evaluated on ``split`` (or its
    seeded subset of ``max_samples``). Returns ``(trajectory, path)``.
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
        config = EvalConfig(device=str(dev))
    _warn_gaps(run, "the path")
    traj = project_trajectory(run.checkpoints(), directions, run.checkpoint(centre), model=model, data=data,
                              loss=opened.loss(), config=config)
    traj.meta.update({"run": str(run.root), "split": split if with_loss else None,
                      "num_samples": None if data is None else data.n, "max_samples": max_samples,
                      "sample_seed": sample_seed, "directions_file": str(directions_file),
                      "dataset": opened.dataset_name, "loss_name": opened.loss().label, "unit": opened.unit})
    return traj, write_trajectory(out, traj)


def render_pictures(run: RunDir, *, backend: str = "auto", planes: Sequence[str] | None = None,
                    views: Sequence[str] | None = None, out: str | Path | None = None,
                    size: tuple[int, int] = (1200, 900), with_quicklooks: bool = False,
                    notice: Notice | None = None) -> list[Path]:
    """The pictures of a run's planes.

    ``backend``: ``paraview`` (pvbatch and the saved states), ``pyvista`` (the matplotlib and
    pyvista quick looks), ``auto`` (ParaView when pvbatch can render here, else the quick looks
    with a notice), ``none``. ``with_quicklooks``: the quick looks too, beside ParaView's views
    (what ``lossvista run`` makes). ``planes``: default every plane whose surface exists and every
    volume (``volume_<kind>``, ParaView only); then ParaView skips, with a notice, the planes
    without a trajectory (its states draw the path).
    ``views``: default all; the quick looks have no ``3d_contours``. ``out``: the pictures'
    folder (default ``RUN/renders``; quick looks beside ParaView's go to ``RUN/renders/quicklook``).
    """
    from ..render import pvbatch
    from ..render.quicklook import render_run_quicklook

    say = notice or (lambda msg: log.warning("%s", msg))
    if backend not in BACKENDS:
        raise ParameterError(f"{param('backend')} must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    if backend == "none":
        return []
    if not run.root.is_dir():
        raise LossvistaError(f"run directory not found: {str(run.root)!r}")
    chosen = list(dict.fromkeys(planes)) if planes else (
        [k for k in PLANES if run.surface(k).is_file()] + [volume_kind(k) for k in run.volumes()])
    if not chosen:
        raise LossvistaError(f"{str(run.root)!r} has no {run.surface('random').name} or {run.surface('pca').name}; "
                             f"compute them first (lossvista run, or lossvista surface)")
    use_paraview = backend == "paraview" or (backend == "auto" and pvbatch.paraview_available())
    if backend == "auto" and not use_paraview:
        say("ParaView (pvbatch, and xvfb-run without a display) not found: rendering the pyvista/matplotlib quick "
            "looks only; install Debian's paraview and xvfb for the ParaView views")
    pictures: list[Path] = []
    if with_quicklooks or not use_paraview:
        quick = [v for v in (views or QUICKLOOK_VIEWS) if v in QUICKLOOK_VIEWS]
        skipped = [v for v in (views or ()) if v not in QUICKLOOK_VIEWS]
        if skipped:
            say(f"the quick looks have no {', '.join(skipped)} view; skipped")
        folder = out if (out and not use_paraview) else run.quicklooks
        for plane in ([p for p in chosen if not pvbatch.is_volume(p)] if quick else []):
            pictures += render_run_quicklook(run.root, plane, quick, folder)
    if use_paraview:
        ready = chosen
        if not planes:  # default planes: skip, with a notice, those the states cannot draw
            ready = [p for p in chosen if run.trajectory(p).is_file()]
            for p in chosen:
                if p not in ready:
                    kind = p[len("volume_"):] if pvbatch.is_volume(p) else p
                    say(f"the {p} {'volume' if kind != p else 'plane'} has no {run.trajectory(p).name} (lossvista "
                        f"trajectory --run RUN --directions RUN/directions/{kind}{'_3d' if kind != p else ''}.pt); "
                        f"not rendered with ParaView")
        pictures += pvbatch.render_paraview(run.root, ready or chosen, views, out or run.renders, size=size)
    return pictures


def export(source: str | Path, format: str, *, out: str | Path | None = None, array: str = "loss",
           scale: float | None = None, log: bool = False) -> Path:
    """Write ``source`` as ``format`` and return the path written.

    ``html``: the self-contained page (:func:`pipeline.render.page.export_page`) of a run
    directory (default ``RUN/index.html``) or of one surface file; ``array`` colours it first.
    ``ply``, ``obj``, ``stl``: the warped surface of a ``.vts`` as a mesh
    (:func:`pipeline.vtkio.export_file`: ``array``, ``scale``, ``log``).
    """
    fmt = str(format).lower()
    if fmt not in EXPORT_FORMATS:
        raise ParameterError(f"{param('format')} must be one of {', '.join(EXPORT_FORMATS)}; got {format!r}")
    if fmt != "html":
        from ..vtkio import export_file

        return export_file(source, fmt, out=out, array=array, scale=scale, log=log)
    for name, value, unset in (("scale", scale, None), ("log", log, False)):
        if value != unset:
            raise ParameterError(f"{param(name)} shapes a mesh (ply, obj, stl); the html page takes none; "
                                 f"got {value!r}")
    from ..render.page import export_page

    return export_page(source, out, array=array)
