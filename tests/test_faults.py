"""Fault injection: damaged files, NaN weights, full disks, signals, races, odd paths and bad values.

One test (or a few) per fault of docs/reliability.md's table, numbered as there. Full disks are
small tmpfs mounts, which need root; elsewhere those tests skip and say why.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.datamodel import Grid, Surface
from pipeline.directions import Directions, random_directions
from pipeline.errors import CheckpointError, LossvistaError
from pipeline.rundir import RunDir
from pipeline.vtkio import read_surface, write_surface

from .conftest import HANG_GUARD, ROOT, assert_one_line_error, hold_after, run_cli, wait_for_chunks


@pytest.fixture
def small_disk(tmp_path):
    """``mount(size)`` -> a folder on a tmpfs of ``size`` bytes (unmounted after the test)."""
    mounted = []

    def mount(size: int) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a full disk is simulated with a tmpfs mount, which needs root")
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the filesystem of ``folder`` up to ``leave`` free bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / ".filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))
        f.flush()


def leftovers(folder: Path) -> list[str]:
    """Temporary files of the atomic writes left in ``folder`` (there must be none)."""
    return sorted(p.name for p in folder.rglob(".*") if p.name != ".filler" and ".tmp" in p.name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A digits run of 3 epochs with its random directions."""
    from pipeline.config import TrainConfig
    from pipeline.train import train

    out = tmp_path_factory.mktemp("faults") / "run"
    train(TrainConfig(epochs=3), out)
    run = RunDir(out)
    random_directions(run.checkpoint(3), seed=0, model_name="digits-cnn").save(run.directions("random"))
    return run


SMALL = ["--x", "-1:1:5", "--y", "-1:1:5", "--device", "cpu"]


# -- 1. `run` resumes after SIGTERM in its surface step ------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD)
def test_01_run_resumes_after_sigterm_bitwise(tmp_path):
    args = [sys.executable, "-m", "pipeline", "run", "--preset", "digits", "--epochs", "3", "--grid", "25",
            "--backend", "none"]
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    proc = subprocess.run([*args, "--out", str(ref)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "x"
    child = subprocess.Popen([*args, "--out", str(out)], cwd=ROOT, env={**env, **hold_after(3)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    parts = out / "surface_random.vts.parts"
    wait_for_chunks(parts, 3, child)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=HANG_GUARD)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert child.returncode != 0 and lines and "stopped by SIGTERM" in lines[-1] and "rerun" in lines[-1], err
    assert len(list(parts.glob("chunk_*.bin"))) >= 3  # what was finished is kept
    proc = subprocess.run([*args, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for plane in ("random", "pca"):
        got, want = read_surface(out / f"surface_{plane}.vts"), read_surface(ref / f"surface_{plane}.vts")
        assert np.array_equal(got.loss, want.loss) and np.array_equal(got.accuracy, want.accuracy), plane


def test_01_directions_saved_again_keep_the_same_fingerprint(trained, tmp_path):
    """The fingerprint is of the tensors, not of the file: saving the same directions twice (as each
    rerun of `run` does) writes other bytes but is the same computation."""
    d = Directions.load(trained.directions("random"))
    a, b = d.save(tmp_path / "a.pt"), d.save(tmp_path / "b.pt")
    assert a.read_bytes() != b.read_bytes()
    assert Directions.load(a).digest() == Directions.load(b).digest() == d.digest()


# -- 2. pictures are written atomically ------------------------------------------------------------------

def test_02_quick_look_on_a_full_disk_keeps_the_earlier_picture(trained, small_disk, tmp_path):
    from pipeline.render.quicklook import render_quicklook

    g = Grid(-1, 1, 21, -1, 1, 21)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    surface = Surface(g, 0.1 + a**2 + b**2, np.ones(g.shape))
    disk = small_disk(1 << 20)
    good = render_quicklook(surface, out_dir=disk, prefix="p", views=["2d_contours"])[0]
    before = good.read_bytes()
    fill(disk, leave=4096)
    with pytest.raises(LossvistaError, match=r"cannot write .*p_2d_contours.png \(No space left on device\)"):
        render_quicklook(surface, out_dir=disk, prefix="p", views=["2d_contours"])
    assert good.read_bytes() == before and not leftovers(disk)
    with pytest.raises(LossvistaError, match="No space left on device"):
        render_quicklook(surface, out_dir=disk, prefix="new", views=["3d_surface"])
    assert not (disk / "new_3d_surface.png").exists() and not leftovers(disk)


def test_02_an_incomplete_png_never_replaces_a_picture(tmp_path):
    from pipeline.atomic import write_png

    good = tmp_path / "p.png"
    good.write_bytes(b"\x89PNG\r\n\x1a\n...IEND\xaeB`\x82")
    with pytest.raises(LossvistaError, match="written incomplete"):
        write_png(good, lambda tmp: tmp.write_bytes(b"\x89PNG\r\n\x1a\ntruncated"))
    assert good.read_bytes().endswith(b"IEND\xaeB`\x82") and not leftovers(tmp_path)



def test_02_a_symlinked_output_is_written_through(tmp_path, monkeypatch):
    from pipeline.atomic import write_png, write_text

    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "page.html"
    target.write_text("old")
    link = tmp_path / "page.html"
    link.symlink_to(target)
    write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    # a writer that expands "~" itself writes the temporary file where it is looked for
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    png = b"\x89PNG\r\n\x1a\n...IEND\xaeB`\x82"
    write_png("~/p.png", lambda tmp: open(os.path.expanduser(str(tmp)), "wb").write(png))
    assert (tmp_path / "~" / "p.png").read_bytes() == png and not (tmp_path / "home").exists()


# -- 3. non-finite weights never become finite positions --------------------------------------------------

def test_03_nan_checkpoint_has_a_nan_position_and_residual(trained, tmp_path, caplog):
    from pipeline.trajectory import project_trajectory

    state = torch.load(trained.checkpoint(1), weights_only=True)
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    paths = [trained.checkpoint(0), tmp_path / "epoch_001.pt", trained.checkpoint(2), trained.checkpoint(3)]
    torch.save(state, paths[1])
    d = Directions.load(trained.directions("random"))
    t = project_trajectory(paths, d, trained.checkpoint(3))
    assert np.isnan(t.coords[1]).all() and np.isnan(t.residual[1])
    assert np.isfinite(t.coords[[0, 2, 3]]).all() and np.isfinite(t.residual[[0, 2, 3]]).all()
    assert "hold NaN or inf weights" in caplog.text


def test_03_nan_directions_are_refused(trained, tmp_path):
    d = Directions.load(trained.directions("random"))
    key = next(k for k, v in d.x.items() if v.is_floating_point() and v.count_nonzero())
    d.x[key] = d.x[key].clone()
    d.x[key].view(-1)[0] = float("nan")
    d.save(tmp_path / "nan.pt")
    proc = run_cli("trajectory", "--run", str(trained.root), "--directions", str(tmp_path / "nan.pt"),
                   "--out", str(tmp_path / "t.vtp"))
    assert_one_line_error(proc, "direction x holds NaN or inf")
    assert not (tmp_path / "t.vtp").exists()


# -- 4. a grid too large is refused before anything is written -------------------------------------------

@pytest.mark.parametrize("axes, fragment", [
    (["--x", "-1:1:100000", "--y", "-1:1:100000"], "points is too large"),
    (["--x", "-1:1:99999999999999999999"], "--x has too many points"),
])
def test_04_grid_too_large(trained, tmp_path, axes, fragment):
    out = tmp_path / "s.vts"
    proc = run_cli("surface", "--run", str(trained.root), "--directions", str(trained.directions("random")),
                   *axes, "--out", str(out))
    assert_one_line_error(proc, fragment)
    assert list(tmp_path.iterdir()) == []


# -- 5. full disks: one line with the cause, nothing partial -------------------------------------------

def test_05_full_disk_during_training_is_one_line_and_resumes(small_disk, tmp_path):
    disk = small_disk(256 << 10)
    out = disk / "run"
    proc = run_cli("train", "--epochs", "40", "--out", str(out), timeout=HANG_GUARD)
    assert_one_line_error(proc, "cannot write", "no space left on device")
    assert not leftovers(disk)
    done = RunDir(out).epochs()
    for e in done:  # every checkpoint that exists is complete
        torch.load(RunDir(out).checkpoint(e), weights_only=True)


def test_05_full_disk_in_directions_and_vtk_writers(trained, small_disk):
    disk = small_disk(64 << 10)
    fill(disk, leave=2048)
    proc = run_cli("directions", "--run", str(trained.root), "--kind", "random", "--out", str(disk / "d.pt"))
    assert_one_line_error(proc, "cannot write", "no space left on device")
    proc = run_cli("trajectory", "--run", str(trained.root), "--directions", str(trained.directions("random")),
                   "--no-loss", "--out", str(disk / "t.vtp"))
    assert_one_line_error(proc, "cannot write", "no space left on device")  # VTK's own log stays off stderr
    assert sorted(p.name for p in disk.iterdir()) == [".filler"]


# -- 6. non-finite points are never drawn, exported or analysed as values ------------------------------------

def test_06_fully_diverged_surface(tmp_path):
    g = Grid(-1, 1, 5, -1, 1, 5)
    path = tmp_path / "surface_random.vts"
    write_surface(path, Surface(g, np.full(g.shape, np.nan), np.full(g.shape, np.nan)))
    assert_one_line_error(run_cli("export", str(path), "--format", "ply"), "nothing to export")
    assert_one_line_error(run_cli("export", str(path), "--format", "ply", "--array", "accuracy"), "nothing to export")
    assert_one_line_error(run_cli("analyze", str(path), "--array", "accuracy"), "no finite (valid) value")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["surface_random.vts"]


def test_06_bounded_points_are_not_exported(tmp_path):
    g = Grid(-1, 1, 5, -1, 1, 5)
    path = tmp_path / "surface_random.vts"
    write_surface(path, Surface(g, np.full(g.shape, 50.0), np.full(g.shape, 0.1), bounded=np.ones(g.shape, bool)))
    assert_one_line_error(run_cli("export", str(path), "--format", "ply"), "nothing to export")
    assert_one_line_error(run_cli("export", str(path), "--format", "ply", "--array", "accuracy"), "nothing to export")


# -- 7. directions of another run -----------------------------------------------------------------------------

def test_07_directions_of_another_run_are_refused(trained, tmp_path):
    from pipeline.config import TrainConfig
    from pipeline.train import train

    other = RunDir(tmp_path / "other")
    train(TrainConfig(epochs=3, seed=1), other.root)
    for command in (["surface", *SMALL, "--out", str(tmp_path / "s.vts")], ["trajectory", "--no-loss"]):
        proc = run_cli(command[0], "--run", str(other.root), "--directions", str(trained.directions("random")),
                       *command[1:])
        assert_one_line_error(proc, "made around other weights", "epoch_003.pt")
    assert not (tmp_path / "s.vts.parts").exists()


# -- 8. configuration values of the wrong type are refused before any work ----------------------------------

@pytest.mark.parametrize("line, fragment", [
    ("epochs = true", "epochs must be an integer >= 0; got True"),
    ("batch_size = true", "batch_size must be an integer >= 1; got True"),
    ("momentum = 7.0", "momentum must be a finite number in [0, 1); got 7.0"),
    ("seed = -5", "seed must be an integer >= 0; got -5"),
])
def test_08_preset_values_of_the_wrong_type(tmp_path, line, fragment):
    preset = tmp_path / "p.toml"
    preset.write_text(f"[train]\nmodel = 'digits-cnn'\n{line}\n")
    proc = run_cli("train", "--preset", str(preset), "--out", str(tmp_path / "r"))
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "r").exists()


def test_08_malformed_run_json_and_a_raising_model_factory(trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained.root, run)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "num_classes": "ten"}))
    proc = run_cli("directions", "--run", str(run), "--kind", "random", "--out", str(tmp_path / "d.pt"))
    assert_one_line_error(proc, "run.json is malformed", "num_classes must be a positive integer; got 'ten'")
    (tmp_path / "badmodels.py").write_text("def net(num_classes=10, in_channels=1):\n    raise RuntimeError('boom')\n")
    proc = run_cli("train", "--model", "badmodels:net", "--out", str(tmp_path / "r"), cwd=tmp_path,
                   env={"PYTHONPATH": str(tmp_path)})
    assert_one_line_error(proc, "the factory raised RuntimeError: boom")


# -- 9. values to refuse -------------------------------------------------------------------------------------

def test_09_export_values_and_an_all_zero_direction(trained, tmp_path):
    g = Grid(-1, 1, 5, -1, 1, 5)
    path = tmp_path / "s.vts"
    write_surface(path, Surface(g, np.ones(g.shape) + np.arange(25).reshape(5, 5), np.ones(g.shape)))
    assert_one_line_error(run_cli("export", str(path), "--format", "ply", "--scale", "1e308"),
                          "--scale 1e+308 makes the heights overflow")
    assert_one_line_error(run_cli("export", str(path), "--format", "ply", "--out", str(tmp_path / "m.stl")),
                          "--out must end in .ply for --format ply")
    d = Directions.load(trained.directions("random"))
    zero = Directions({k: torch.zeros_like(v) for k, v in d.x.items()}, d.y, dict(d.meta))
    zero.save(tmp_path / "zero.pt")
    proc = run_cli("surface", "--run", str(trained.root), "--directions", str(tmp_path / "zero.pt"), *SMALL,
                   "--out", str(tmp_path / "z.vts"))
    assert_one_line_error(proc, "direction x is zero on every tensor")
    assert not (tmp_path / "z.vts.parts").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.vts", "zero.pt"]


# -- 10. honest messages, no leftovers --------------------------------------------------------------------------

def test_10a_nan_directions_leave_no_work_directory(trained, tmp_path):
    d = Directions.load(trained.directions("random"))
    nan = Directions({k: v * float("nan") if v.is_floating_point() else v for k, v in d.x.items()}, d.y, dict(d.meta))
    nan.save(tmp_path / "nan.pt")
    proc = run_cli("surface", "--run", str(trained.root), "--directions", str(tmp_path / "nan.pt"), *SMALL,
                   "--out", str(tmp_path / "s.vts"))
    assert_one_line_error(proc, "NaN or inf")
    assert "rerun" not in proc.stderr and not (tmp_path / "s.vts.parts").exists()


def test_10b_work_directory_removed_by_another_process(tmp_path):
    from pipeline.surface import ChunkStore, ResumeOptions, evaluate_surface, parts_dir

    out = tmp_path / "s.vts"
    grid = Grid(-1, 1, 5, -1, 1, 5)

    def evaluate(coords):  # the other process finishes the surface and removes the work directory
        if ChunkStore(parts_dir(out)).chunk_ids():
            out.write_bytes(b"written by the other process")
            import shutil

            shutil.rmtree(parts_dir(out))
        n = len(coords)
        return {"loss": np.ones(n), "accuracy": np.ones(n), "bounded": np.zeros(n, bool), "samples": np.ones(n, int)}

    with pytest.raises(LossvistaError) as info:
        evaluate_surface(evaluate, grid, out, identity={"k": 1}, options=ResumeOptions(chunk_size=5))
    msg = str(info.value)
    assert "was removed while this process was evaluating" in msg and "another process" in msg
    assert "kept" not in msg.replace("went with it", "")


@pytest.mark.parametrize("content", [b"\x00not a checkpoint at all\n" * 100, b"hi\n",
                                     b"random text that is not a checkpoint\n"])
def test_10c_random_bytes_are_not_called_a_pickle_that_runs_code(tmp_path, content):
    from pipeline.checkpoints import load_checkpoint

    path = tmp_path / "epoch_001.pt"
    path.write_bytes(content)  # text files make torch's unpickler fail with KeyError or IndexError
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as info:
        load_checkpoint(path)
    assert "would run code" not in str(info.value)


def test_10d_a_gap_in_the_checkpoints_is_named(trained, tmp_path, caplog):
    import shutil

    run = RunDir(tmp_path / "run")
    shutil.copytree(trained.root, run.root)
    run.checkpoint(2).unlink()
    proc = run_cli("directions", "--run", str(run.root), "--kind", "interp", "--from", "2", "--out",
                   str(tmp_path / "d.pt"))
    assert_one_line_error(proc, "--from must be one of the epochs 0..1, 3 in", "; got 2")
    from pipeline.workflow import make_directions, make_trajectory

    make_directions(run, "pca", out=tmp_path / "pca.pt")
    assert "no checkpoint of epoch 2: the PCA of the trajectory skips it" in caplog.text
    make_trajectory(run, trained.directions("random"), with_loss=False, out=tmp_path / "t.vtp")
    assert "no checkpoint of epoch 2: the path skips it" in caplog.text


def test_10e_a_shard_says_who_recomputes_a_corrupted_chunk(tmp_path, caplog):
    from pipeline.surface import ChunkStore, ResumeOptions, Shard, evaluate_surface, parts_dir

    out, grid, identity = tmp_path / "s.vts", Grid(-1, 1, 5, -1, 1, 5), {"k": 1}

    def evaluate(coords):
        n = len(coords)
        return {"loss": np.ones(n), "accuracy": np.ones(n), "bounded": np.zeros(n, bool), "samples": np.ones(n, int)}

    evaluate_surface(evaluate, grid, out, identity=identity, options=ResumeOptions(chunk_size=5, shard=Shard(1, 2)))
    chunk = ChunkStore(parts_dir(out)).chunk_path(1)
    chunk.write_bytes(chunk.read_bytes()[:-3])
    evaluate_surface(evaluate, grid, out, identity=identity, options=ResumeOptions(chunk_size=5, shard=Shard(0, 2)))
    assert "it belongs to shard 1/2, which recomputes it when rerun" in caplog.text
    assert "recomputing it" not in caplog.text


def test_10f_a_run_directory_name_that_is_not_utf8(trained, tmp_path):
    bad = Path(os.fsdecode(bytes(tmp_path) + b"/run-\xff"))
    proc = subprocess.run([sys.executable, "-m", "pipeline", "surface", "--run", bad, "--directions",
                           str(trained.directions("random")), *SMALL], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "TQDM_DISABLE": "1"})
    assert_one_line_error(proc, "not valid UTF-8")


def test_10g_a_damaged_manifest_is_rebuilt_from_the_chunks(trained, tmp_path, capsys):
    from pipeline.cli import main
    from pipeline.surface import ChunkStore, parts_dir

    args = ["-q", "surface", "--run", str(trained.root), "--directions", str(trained.directions("random")),
            "--x", "-1:1:9", "--y", "-1:1:7", "--chunk-size", "4", "--device", "cpu"]
    ref = tmp_path / "ref.vts"
    assert main([*args, "--out", str(ref)]) == 0
    out = tmp_path / "s.vts"
    assert main([*args, "--shard", "0/2", "--out", str(out)]) == 0  # half the chunks
    store = ChunkStore(parts_dir(out))
    kept = len(store.chunk_ids())
    store.manifest_path.write_text("{ damaged")
    capsys.readouterr()
    assert main([*args[1:], "--out", str(out)]) == 0
    assert f"resumed: {kept} of 16 chunks were already done" in capsys.readouterr().err  # none thrown away
    assert np.array_equal(read_surface(out).loss, read_surface(ref).loss)


def test_10h_run_persistence_is_checked_before_training(tmp_path):
    proc = run_cli("run", "--persistence", "5", "--out", str(tmp_path / "r"))
    assert_one_line_error(proc, "--persistence must be a finite number in [0, 1); got 5.0")
    assert not (tmp_path / "r").exists()


def test_10i_trajectory_checks_its_output_before_evaluating(trained, tmp_path, monkeypatch):
    import pipeline.trajectory
    from pipeline.workflow import make_trajectory

    def fail(*args, **kwargs):
        raise AssertionError("evaluated before checking the output")

    monkeypatch.setattr(pipeline.trajectory, "project_trajectory", fail)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LossvistaError, match="file is a file, not a folder"):
        make_trajectory(trained, trained.directions("random"), out=blocker / "t.vtp")
