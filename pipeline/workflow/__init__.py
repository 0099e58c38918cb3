"""The stages of a run, one function each, and ``run_pipeline``: the whole ``lossvista run``.

Each stage reads and writes files in the run directory (:class:`~pipeline.rundir.RunDir`), so
any stage can be rerun alone. ``lossvista run`` and the subcommands call the same functions:

=========================  ===================================================================
train                      :func:`pipeline.train.train`
directions                 :func:`make_directions`: RUN's checkpoints -> ``directions/<kind>.pt``
trajectory                 :func:`make_trajectory`: checkpoints + directions -> ``trajectory_<kind>.vtp``
surface                    :func:`pipeline.surface.compute_surface` (resumable, distributed)
analysis                   :func:`pipeline.analyze.analyze_file`
pictures                   :func:`render_pictures`: ParaView views and/or quick looks
export                     :func:`export`: a mesh of a surface, or the page of a run (``index.html``)
the whole run              :func:`run_pipeline` (:mod:`.whole`)
=========================  ===================================================================
"""
from __future__ import annotations

from .stages import (BACKENDS, DIRECTION_KINDS, EXPORT_FORMATS, export, make_directions, make_trajectory,
                     render_pictures)
from .volume import VOLUME_KINDS, volume_directions
from .whole import RunOptions, RunResult, landscape, run_pipeline

__all__ = ["make_directions", "make_trajectory", "render_pictures", "export", "RunOptions", "RunResult", "landscape",
           "run_pipeline", "volume_directions", "DIRECTION_KINDS", "BACKENDS", "EXPORT_FORMATS", "VOLUME_KINDS"]
