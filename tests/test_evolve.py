"""The landscape along training (pipeline.workflow.evolve, lossvista evolve, pipeline.render.animate)
on a trained digits run, checked against the surface stage and the topology run on their own."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from pipeline.datamodel import Grid
from pipeline.rundir import RunDir
from pipeline.workflow.evolve import EvolveOptions, choose_epochs, evolve

from .conftest import HANG_GUARD, ROOT

GRID = Grid(-0.6, 0.6, 7, -0.6, 0.6, 7)


def test_choose_epochs():
    assert choose_epochs([0, 1, 2, 3], None) == [0, 1, 2, 3]
    assert choose_epochs(list(range(11)), None, count=6) == [0, 2, 4, 6, 8, 10]
    assert choose_epochs(list(range(11)), [7, 3, 3]) == [3, 7]
    with pytest.raises(ValueError, match="epochs must name checkpoints of the run"):
        choose_epochs([0, 1, 2], [5])


@pytest.fixture(scope="module")
def evolved(digits_run, tmp_path_factory):
    import shutil

    run = tmp_path_factory.mktemp("evolve") / "run"
    shutil.copytree(digits_run, run)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "evolve", str(run), "--epochs", "0", "3",
                           "--x", "-0.6:0.6:7", "--y", "-0.6:0.6:7", "--seed", "5", "--device", "cpu",
                           "--backend", "pyvista"],  # ParaView's animations: tests/paraview/test_animation.py
                          capture_output=True, text=True, cwd=str(ROOT), timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr
    return RunDir(run), proc.stderr


def _filters(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(1, -1)


def test_planes_share_the_seed_and_take_each_checkpoints_filter_norms(evolved):
    """Around epoch e, each filter of a direction points the same way as around epoch 0 (the same
    Gaussian) and has the norm of theta_e's filter."""
    from pipeline.checkpoints import load_checkpoint
    from pipeline.directions import Directions

    run, _ = evolved
    folder = RunDir(run.evolve)
    d0, d3 = (Directions.load(folder.directions(f"epoch_{e:03d}")) for e in (0, 3))
    theta3 = load_checkpoint(run.checkpoint(3))
    assert d0.meta["seed"] == d3.meta["seed"] == 5 and d3.meta["centre_epoch"] == 3
    checked = 0
    for k, w in theta3.items():
        if not w.is_floating_point() or w.dim() <= 1 or not d3.x[k].abs().sum():
            continue
        a, b = _filters(d0.x[k].double()), _filters(d3.x[k].double())
        unit_a, unit_b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
        torch.testing.assert_close(unit_a, unit_b, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b.norm(dim=1), _filters(w.double()).norm(dim=1), rtol=1e-5, atol=1e-7)
        checked += 1
    assert checked >= 2


def test_each_plane_is_the_surface_stage_bit_for_bit(evolved, tmp_path):
    """The plane around epoch 3 equals `lossvista surface` on its directions file, computed apart."""
    from pipeline.vtkio import read_surface

    run, _ = evolved
    folder = RunDir(run.evolve)
    out = tmp_path / "alone.vts"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "surface", "--run", str(run.root), "--directions",
                           str(folder.directions("epoch_003")), "--x", "-0.6:0.6:7", "--y", "-0.6:0.6:7",
                           "--epoch", "3", "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr
    mine, alone = read_surface(folder.surface("epoch_003")), read_surface(out)
    assert mine.loss.tobytes() == alone.loss.tobytes()
    assert mine.meta["epoch"] == 3 and mine.meta["centre_loss"] == alone.meta["centre_loss"]


def test_time_series_summary_and_central_basin(evolved):
    from pipeline.topology import analyze
    from pipeline.vtkio import read_surface

    run, stderr = evolved
    pvd = (run.evolve / "landscape.pvd").read_text()
    assert 'timestep="0"' in pvd and 'timestep="3"' in pvd and 'file="surface_epoch_003.vts"' in pvd
    summary = json.loads((run.evolve / "evolution.json").read_text())
    assert [r["epoch"] for r in summary["epochs"]] == [0, 3] and summary["seed"] == 5
    for row in summary["epochs"]:
        surface = read_surface(run.evolve / row["surface"])
        topo = analyze(surface.values("loss", masked=True), persistence=summary["persistence"], relative=True,
                       xs=surface.xs, ys=surface.ys, delta=summary["delta"])
        label = int(topo.basins[GRID.centre_index()])
        assert row["central_basin"]["label"] == label
        assert row["central_basin"]["width_diameter"] == pytest.approx(topo.minima.width_diameter[label])
        assert row["counts"] == topo.counts()
        assert row["centre_loss"] == pytest.approx(surface.loss[3, 3])
    # training lowers the loss at the centre: the last checkpoint sits lower than the first
    assert summary["epochs"][1]["centre_loss"] < summary["epochs"][0]["centre_loss"]
    assert "planes around 2 checkpoints (0, 3)" in stderr and "epoch    3: cross_entropy " in stderr
    assert summary["unit"] == "epoch" and summary["loss_name"] == "cross_entropy"


def test_pictures_and_quicklook_animations(evolved):
    from PIL import Image

    run, _ = evolved
    assert (run.evolve / "evolution.png").is_file()
    assert not run.animation("landscape").exists()  # ParaView's, not asked for
    gif = Image.open(run.animation("landscape", quicklook=True))
    assert gif.n_frames == 2
    frames = sorted(run.frames(quicklook=True).glob("landscape_*.png"))
    assert [f.name for f in frames] == ["landscape_000.png", "landscape_003.png"]
    first, last = (np.asarray(Image.open(f).convert("L"), float) for f in frames)
    assert np.abs(first - last).mean() > 1.0  # two different planes, not one picture twice


def test_path_animation_has_a_frame_per_checkpoint(digits_run, tmp_path):
    import shutil

    from PIL import Image

    from pipeline.render.animate import path_animation
    from pipeline.trajectory import pca_grid, project_trajectory
    from pipeline.datamodel import Surface
    from pipeline.directions import pca_directions
    from pipeline.vtkio import write_surface, write_trajectory

    run = RunDir(shutil.copytree(digits_run, tmp_path / "run"))
    d = pca_directions(run.checkpoints(), centre=run.checkpoint(3))
    path = project_trajectory(run.checkpoints(), d, run.checkpoint(3))
    grid = pca_grid(path, n=9)
    a, b = np.meshgrid(grid.xs, grid.ys, indexing="ij")
    write_surface(run.surface("pca"), Surface(grid, 1.0 + a ** 2 + b ** 2, meta={"direction_kind": "pca"}))
    write_trajectory(run.trajectory("pca"), path)
    frames, gif = path_animation(run, "pca")
    assert len(frames) == len(path.epoch) == 4
    assert gif == run.animation("path_pca", quicklook=True)
    # the marker of ParaView's animation: one point per checkpoint, its epoch the time step
    from pipeline.vtkio import read_trajectory
    from pipeline.workflow.evolve import write_path_markers

    pvd = write_path_markers(run, "pca")
    assert pvd == run.path_markers("pca")
    steps = [(int(m.group(1)), m.group(2)) for m in re.finditer(r'timestep="(\d+)".*?file="([^"]+)"', pvd.read_text())]
    assert [e for e, _ in steps] == [int(e) for e in path.epoch]
    for k, (e, name) in enumerate(steps):
        one = read_trajectory(pvd.parent / name)
        assert one.coords.shape == (1, 2) and int(one.epoch[0]) == e
        np.testing.assert_array_equal(one.coords[0], path.coords[k])
    assert Image.open(gif).n_frames == 4
    pictures = [np.asarray(Image.open(f).convert("L"), float) for f in frames]
    # the ring moves: each frame differs from the first in more than its title
    assert all((np.abs(p - pictures[0]) > 60).sum() > 400 for p in pictures[1:])


def test_a_second_evolution_replaces_the_first_ones_planes(digits_run, tmp_path):
    import shutil

    from pipeline.engine import EvalConfig

    run = RunDir(shutil.copytree(digits_run, tmp_path / "run"))
    options = dict(grid=Grid(-0.5, 0.5, 5, -0.5, 0.5, 5), eval=EvalConfig(device="cpu", max_samples=64))
    evolve(run, EvolveOptions(epochs=(0, 3), **options))
    assert (run.evolve / "surface_epoch_000.vts").is_file()
    stale = run.frames(quicklook=True) / "landscape_000.png"  # the first evolution's quick-look frame
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"png")
    evolve(run, EvolveOptions(epochs=(1, 3), **options))
    names = sorted(p.relative_to(run.evolve).as_posix() for p in run.evolve.rglob("*epoch_*") if p.is_file()
                   and "path_pca" not in p.parts)
    assert names == ["critical_points_epoch_001.vtp", "critical_points_epoch_003.vtp", "directions/epoch_001.pt",
                     "directions/epoch_003.pt", "surface_epoch_001.vts", "surface_epoch_003.vts",
                     "topology_epoch_001.json", "topology_epoch_003.json"]
    assert not stale.exists()


def test_chunks_of_other_settings_left_by_an_interruption_are_discarded_with_a_warning(digits_run, tmp_path,
                                                                                       caplog):
    """A run's own planes are the workflow's: an interrupted plane of another grid does not block
    the next evolve (lossvista surface, whose file the user names, refuses such chunks instead)."""
    import shutil

    from pipeline.engine import EvalConfig
    from pipeline.surface import ResumeOptions, Shard, SurfaceRequest, compute_surface
    from pipeline.workflow.stages import make_directions

    run = RunDir(shutil.copytree(digits_run, tmp_path / "run"))
    folder = RunDir(run.evolve)
    _, dfile = make_directions(run, "random", seed=0, norm="filter", ignore="biasbn", epoch=3,
                               out=folder.directions("epoch_003"))
    eval_ = EvalConfig(device="cpu", max_samples=64)
    stale = SurfaceRequest(run=run.root, directions=dfile, grid=Grid(-0.5, 0.5, 7, -0.5, 0.5, 7), epoch=3,
                           out=folder.surface("epoch_003"), eval=eval_)
    compute_surface(stale, ResumeOptions(chunk_size=5, shard=Shard(0, 2)))  # half a plane, as an interruption
    assert not folder.surface("epoch_003").exists()
    with caplog.at_level("WARNING"):
        evolve(run, EvolveOptions(epochs=(3,), grid=Grid(-0.5, 0.5, 5, -0.5, 0.5, 5), eval=eval_))
    assert "partial results of another configuration" in caplog.text and "discarded" in caplog.text
    from pipeline.vtkio import read_surface

    assert read_surface(folder.surface("epoch_003")).grid.nx == 5


def test_an_evolve_folder_that_cannot_be_written_is_one_line_before_any_plane(digits_run, tmp_path):
    import shutil

    run = shutil.copytree(digits_run, tmp_path / "run")
    shutil.rmtree(run / "evolve", ignore_errors=True)
    (run / "evolve").write_text("in the way")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "evolve", str(run), "--x", "-0.5:0.5:3",
                           "--y", "-0.5:0.5:3"], capture_output=True, text=True, cwd=str(ROOT), timeout=HANG_GUARD)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "evolve is a file, not a folder" in proc.stderr


@pytest.mark.parametrize("args,fragment", [
    (["--epochs", "9"], "--epochs must name checkpoints of the run"),
    (["--epochs", "0", "x"], "--epochs must be checkpoint numbers and ranges like '0,5,10..20'; got '0 x'"),
    (["--delta", "0"], "--delta must be a number > 0"),
    (["--x", "1:0:5"], "--x needs min < max"),
    (["--x", "-1:1:2"], "grid must hold the point (0, 0)"),  # each plane is read around its checkpoint
    # checked before the first plane is computed, not after
    (["--persistence", "2"], "--persistence must be"),
    (["--size", "0", "-5"], "--size must be at least 64 x 64 pixels; got 0 -5"),
])
def test_bad_input_is_one_line(digits_run, args, fragment):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "evolve", str(digits_run), *args],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=HANG_GUARD)
    assert proc.returncode != 0
    assert fragment in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (digits_run / "evolve").exists()
