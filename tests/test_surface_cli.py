"""`lossvista surface` end to end on a trained digits run: resume after SIGKILL, torchrun, shards/merge,
refused configurations and every fault of issue 6, each compared with an uninterrupted run.

Every run here uses one thread per process (OMP_NUM_THREADS=1), as torchrun does, so that
single-process, resumed, sharded and distributed grids can be compared bit for bit.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.run import Run
from pipeline.rundir import RunDir
from pipeline.directions import Directions, random_directions
from pipeline.surface import ChunkStore, parts_dir
from pipeline.vtkio import read_surface

from .conftest import HANG_GUARD, ROOT, assert_one_line_error, hold_after, wait_for_chunks

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
SMALL = ["--x", "-1:1:9", "--y", "-1:1:7", "--chunk-size", "4", "--device", "cpu"]  # 63 points, 16 chunks
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def cli(*args: str, timeout: float = HANG_GUARD, env: dict | None = None) -> subprocess.CompletedProcess:
    """``lossvista surface ARGS`` in a subprocess: a real exit status, real signals, real stderr."""
    return subprocess.run([sys.executable, "-m", "pipeline", "surface", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **ENV, **(env or {})})


@pytest.fixture
def run_main(main_cli):
    """``lossvista surface ARGS`` in this process (no import cost), one thread like the subprocesses."""
    return lambda *args: main_cli("surface", *args)


def same_grid(a, b, names=("loss", "accuracy", "bounded", "valid")) -> None:
    for name in names:
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(x, y, equal_nan=True), (name, np.abs(np.asarray(x, float) - np.asarray(y, float)).max())


@pytest.fixture(scope="module")
def setup(digits_run, tmp_path_factory):
    """Directions (2D, 1D, one for another model, one that overflows) and the reference small surface."""
    tmp = tmp_path_factory.mktemp("surface")
    run = RunDir(digits_run)
    centre = run.checkpoint(run.epochs()[-1])
    d2 = random_directions(centre, seed=1, model_name="digits-cnn")
    d2.save(tmp / "random.pt")
    random_directions(centre, seed=2, ndim=1).save(tmp / "line.pt")
    huge = Directions({k: v * 1e30 for k, v in d2.x.items()}, {k: v * 1e30 for k, v in d2.y.items()}, dict(d2.meta))
    huge.save(tmp / "huge.pt")
    from pipeline.models import build_model

    other = build_model("lenet", num_classes=10, in_channels=1)
    random_directions(other, seed=0).save(tmp / "lenet.pt")
    from pipeline.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["-q", "surface", "--run", str(digits_run), "--directions", str(tmp / "random.pt"), *SMALL,
                     "--out", str(tmp / "ref.vts")]) == 0
    finally:
        torch.set_num_threads(threads)
    return {"run": digits_run, "tmp": tmp, "dirs": tmp / "random.pt", "ref": read_surface(tmp / "ref.vts")}


BIG = ["--x", "-1:1:15", "--y", "-1:1:13", "--chunk-size", "3", "--batch-size", "64",
       "--device", "cpu"]  # 195 points, 65 chunks


@pytest.fixture(scope="module")
def big(setup):
    """A grid slow enough to be interrupted partway (~5 s), and its uninterrupted surface."""
    from pipeline.cli import main

    args = ["--run", str(setup["run"]), "--directions", str(setup["dirs"]), *BIG]
    out = setup["tmp"] / "big_ref.vts"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["-q", "surface", *args, "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    return args, read_surface(out)


def base(setup, out: Path, *extra: str) -> list[str]:
    return ["--run", str(setup["run"]), "--directions", str(setup["dirs"]), *SMALL, "--out", str(out), *extra]


# -- values and layout ----------------------------------------------------------------------------

def test_values_match_an_independent_plain_loop(setup):
    """loss[i, j] is the model at theta + xs[i] x + ys[j] y: load weights, forward, cross-entropy."""
    ref = setup["ref"]
    run = RunDir(setup["run"])
    d = Directions.load(setup["dirs"])
    from pipeline.data import load_dataset

    split = load_dataset("digits").train
    for i, j in [(0, 0), (8, 6), (2, 5), (4, 3)]:
        model, _ = Run(run).build_model()
        a, b = ref.xs[i], ref.ys[j]
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    v.add_(a * d.x[k] + b * d.y[k])
            logits = model(split.inputs)
            loss = F.cross_entropy(logits.double(), split.targets).item()
            acc = (logits.argmax(1) == split.targets).double().mean().item()
        assert ref.loss[i, j] == pytest.approx(loss, rel=1e-5), (i, j)
        assert ref.accuracy[i, j] == pytest.approx(acc, abs=1e-9), (i, j)
    assert ref.meta["samples"] == len(split) and ref.meta["direction_kind"] == "random"
    assert ref.meta["centre_loss"] == ref.loss[4, 3] and ref.valid.all()


def test_default_output_and_what_is_printed(setup, tmp_path, run_main):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(setup["run"], run)
    proc = run_main("--run", str(run), "--directions", str(setup["dirs"]), "--x", "-0.5:0.5:3", "--y", "-0.5:0.5:3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(run / "surface_random.vts")
    assert read_surface(run / "surface_random.vts").loss.shape == (3, 3)
    assert not parts_dir(run / "surface_random.vts").exists()
    assert "evaluated 9 points in" in proc.stderr and "9 of 9 points valid" in proc.stderr


def test_one_dimensional_direction(setup, tmp_path, run_main):
    line = str(setup["tmp"] / "line.pt")
    proc = run_main("--run", str(setup["run"]), "--directions", line, "--x", "-1:1:7", "--out", str(tmp_path / "l.vts"))
    assert proc.returncode == 0, proc.stderr
    assert read_surface(tmp_path / "l.vts").loss.shape == (7, 1)
    proc = run_main("--run", str(setup["run"]), "--directions", line, "--y", "-1:1:5", "--out", str(tmp_path / "m.vts"))
    assert_one_line_error(proc, "--y does not apply", "1D direction")


# -- resume ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD)
def test_sigkill_then_rerun_gives_the_uninterrupted_grid(big, tmp_path):
    args, ref = big
    out = tmp_path / "s.vts"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "surface", *args, "--out", str(out)], cwd=ROOT,
                            env={**os.environ, **ENV, **hold_after(3)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_chunks(parts_dir(out), 3, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    done = ChunkStore(parts_dir(out)).chunk_ids()
    assert 3 <= len(done) < 65 and not out.exists()
    rerun = cli(*args, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed: {len(done)} of 65 chunks" in rerun.stderr  # only the rest was computed
    same_grid(read_surface(out), ref)


def test_changed_configuration_is_refused_unless_restart(setup, tmp_path, run_main):
    out = tmp_path / "s.vts"
    proc = run_main(*base(setup, out, "--shard", "0/2"))  # leaves half the chunks behind
    assert proc.returncode == 0, proc.stderr
    proc = run_main(*base(setup, out, "--cap", "3"))
    assert_one_line_error(proc, "holds partial results of another configuration", "cap", "--restart")
    proc = run_main(*base(setup, out, "--split", "test"))
    assert_one_line_error(proc, "another configuration", "split", "--restart")
    other = setup["tmp"] / "line.pt"
    proc = run_main("--run", str(setup["run"]), "--directions", str(other), "--x", "-1:1:9", "--chunk-size", "4",
                    "--device", "cpu", "--out", str(out))
    assert_one_line_error(proc, "another configuration", "directions: '", "grid")
    assert len(ChunkStore(parts_dir(out)).chunk_ids()) == 8  # refused: nothing touched
    proc = run_main(*base(setup, out, "--split", "test", "--restart"))
    assert proc.returncode == 0, proc.stderr
    assert "resumed" not in proc.stderr
    assert read_surface(out).meta["split"] == "test"


def test_corrupted_chunk_is_recomputed(setup, tmp_path, run_main, caplog):
    out = tmp_path / "s.vts"
    assert run_main(*base(setup, out, "--shard", "1/2")).returncode == 0
    store = ChunkStore(parts_dir(out))
    raw = bytearray(store.chunk_path(3).read_bytes())
    raw[-10] ^= 0xFF
    store.chunk_path(3).write_bytes(bytes(raw))
    proc = run_main(*base(setup, out, "--merge"))  # a merge does not evaluate: it refuses and says what to do
    assert_one_line_error(proc, "8 of 16 chunks missing", "1 corrupted (3: checksum mismatch)", "--shard 0/2",
                          "--shard 1/2")
    proc = run_main(*base(setup, out))
    assert proc.returncode == 0, proc.stderr
    assert any("checksum mismatch" in r.getMessage() for r in caplog.records)
    assert "recomputed 1 corrupted chunk" in proc.stderr
    assert "resumed: 7 of 16 chunks" in proc.stderr
    same_grid(read_surface(out), setup["ref"])


# -- distributed ----------------------------------------------------------------------------------

def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [TORCHRUN, "--standalone", f"--nproc-per-node={nproc}", "-m", "pipeline", "--", "surface", *args]


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(setup, tmp_path):
    out = tmp_path / "s.vts"
    proc = subprocess.run(_torchrun(*base(setup, out)), cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD,
                          env={**os.environ, **ENV})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out)  # rank 0 prints where the file is
    same_grid(read_surface(out), setup["ref"])
    assert not parts_dir(out).exists()


@pytest.mark.slow
def test_nproc_per_node_two_processes_equal_one(setup, tmp_path):
    """``--nproc-per-node 2`` starts two ranks through torch's launcher (no torchrun line)."""
    out = tmp_path / "s.vts"
    proc = cli(*base(setup, out), "--nproc-per-node", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out)  # rank 0 prints where the file is
    assert "by 2 processes" in proc.stderr
    same_grid(read_surface(out), setup["ref"])
    assert not parts_dir(out).exists()


def test_nproc_per_node_refuses_bad_input_before_starting_workers(setup, tmp_path):
    proc = cli(*base(setup, tmp_path / "s.vts"), "--x", "1:-1:5", "--nproc-per-node", "2")
    assert_one_line_error(proc, "--x needs min < max")
    proc = cli(*base(setup, tmp_path / "s.vts"), "--nproc-per-node", "0")
    assert_one_line_error(proc, "--nproc-per-node must be a positive integer")


@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD)
def test_torchrun_rank_killed_keeps_the_others_chunks_and_resumes(big, tmp_path):
    import psutil

    args, ref = big
    out = tmp_path / "s.vts"
    proc = subprocess.Popen(_torchrun(*args, "--out", str(out)), cwd=ROOT, env={**os.environ, **ENV, **hold_after(3)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_chunks(parts_dir(out), 6, proc)
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if p.environ().get("RANK") in ("0", "1") and "pipeline" in " ".join(p.cmdline())]
        rank1 = [p for p in workers if p.environ()["RANK"] == "1"]
        assert len(rank1) == 1, [(p.pid, p.cmdline()) for p in workers]
        rank1[0].send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and not out.exists()
    store = ChunkStore(parts_dir(out))
    done = store.chunk_ids()
    assert len(done) >= 6 and len(done) < 65
    assert any(c % 2 == 0 for c in done)  # rank 0's share survived the death of rank 1
    # rank 0 was stopped by torchrun and said, in one line, what it kept
    assert "lossvista surface: error: stopped by SIGTERM" in stderr and "rerun the same command to resume" in stderr
    rerun = cli(*args, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed: {len(done)} of 65 chunks" in rerun.stderr
    same_grid(read_surface(out), ref)


def test_shards_then_merge_equal_a_single_run(setup, tmp_path, run_main):
    out = tmp_path / "s.vts"
    for i in (2, 0, 1):
        proc = run_main(*base(setup, out, "--shard", f"{i}/3"))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(parts_dir(out)) and not out.exists()
        if i != 1:
            assert "--merge" not in proc.stderr
    assert "all done: run the same command with --merge" in proc.stderr
    proc = run_main(*base(setup, out, "--merge"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    same_grid(read_surface(out), setup["ref"])
    assert not parts_dir(out).exists()
    proc = run_main(*base(setup, out, "--merge"))
    assert_one_line_error(proc, "nothing to merge", "merged already?")


def test_merge_checks_the_shards_device_without_needing_one(setup, tmp_path, run_main):
    """A merge evaluates nothing: naming the shards' device (cuda) must not require a GPU on the
    merging machine; it only enters the configuration check (here the shards ran on the CPU)."""
    out = tmp_path / "s.vts"
    for i in (0, 1):
        assert run_main(*base(setup, out, "--shard", f"{i}/2")).returncode == 0  # SMALL has --device cpu
    proc = run_main(*base(setup, out, "--device", "cuda", "--merge"))
    assert_one_line_error(proc, "partial results of another configuration", "eval.device: 'cpu' vs 'cuda'",
                          "give --merge the same options as the shards")
    assert "--restart" not in proc.stderr  # a merge never discards computed chunks
    assert run_main(*base(setup, out, "--merge")).returncode == 0
    same_grid(read_surface(out), setup["ref"])


# -- bad input and faults -------------------------------------------------------------------------

@pytest.mark.parametrize("option,spec,fragment", [
    ("--x", "-1:1", "--x must look like 'min:max:n'"),
    ("--y", "1:-1:5", "--y needs min < max"),
    ("--x", "-1:1:0", "--x needs at least 1 point"),
    ("--x", "-1:1:1", "--x '-1:1:1' has one point, which cannot span [-1, 1]"),
    ("--shard", "2/2", "--shard must look like 'i/k'"),
])
def test_bad_specs_are_one_line_errors(setup, tmp_path, run_main, option, spec, fragment):
    args = ["--run", str(setup["run"]), "--directions", str(setup["dirs"]), "--out", str(tmp_path / "s.vts")]
    proc = run_main(*args, f"{option}={spec}")
    assert_one_line_error(proc, fragment)
    assert not parts_dir(tmp_path / "s.vts").exists()


def test_bad_grid_spec_exits_non_zero_in_a_real_process(setup, tmp_path):
    proc = cli("--run", str(setup["run"]), "--directions", str(setup["dirs"]), "--x", "-1:1", "--out",
               str(tmp_path / "s.vts"))
    assert proc.returncode == 1
    assert_one_line_error(proc, "--x must look like 'min:max:n'", "'-1:1'")


def test_directions_that_do_not_fit_the_model(setup, tmp_path, run_main):
    proc = run_main("--run", str(setup["run"]), "--directions", str(setup["tmp"] / "lenet.pt"), *SMALL,
               "--out", str(tmp_path / "s.vts"))
    assert_one_line_error(proc, "do not fit", "digits-cnn")
    assert not parts_dir(tmp_path / "s.vts").exists()


def test_unwritable_output_directory(setup, tmp_path, run_main):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run_main(*base(setup, blocker / "s.vts"))
    assert_one_line_error(proc, "output directory", "file is a file, not a folder")
    target = Path("/sys") if os.geteuid() == 0 else tmp_path / "ro"
    if target.name == "ro":
        target.mkdir()
        target.chmod(0o555)
    proc = run_main(*base(setup, target / "s.vts"))
    assert_one_line_error(proc, f"output directory {target} is not writable")


def test_disk_full_while_writing_a_chunk(setup, tmp_path, monkeypatch, run_main):
    """In process, so that the chunk write itself can be made to fail with ENOSPC."""
    from pipeline.surface import store as store_mod

    real_fsync = os.fsync

    def fsync(fd):
        if ".chunk_000005.bin." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    out = tmp_path / "s.vts"
    proc = run_main(*base(setup, out))
    assert_one_line_error(proc, "lossvista surface: error: cannot write chunk 5", "No space left on device",
                          "5 chunk(s) finished by this process are kept", "rerun the same command to resume")
    store = ChunkStore(parts_dir(out))
    assert store.chunk_ids() == [0, 1, 2, 3, 4] and not out.exists()
    assert not [p.name for p in store.root.iterdir() if p.name.startswith(".")]  # no half-written file
    monkeypatch.setattr(store_mod.os, "fsync", real_fsync)
    proc = run_main(*base(setup, out))
    assert proc.returncode == 0 and "resumed: 5 of 16 chunks" in proc.stderr
    same_grid(read_surface(out), setup["ref"])


def test_nonfinite_losses_are_stored_as_nonfinite_and_invalid(setup, tmp_path, run_main):
    out = tmp_path / "s.vts"
    proc = run_main("--run", str(setup["run"]), "--directions", str(setup["tmp"] / "huge.pt"), *SMALL, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    s = read_surface(out)
    bad = ~np.isfinite(s.loss)
    assert bad.sum() > 0 and s.loss[4, 3] == setup["ref"].loss[4, 3]  # the centre is untouched
    assert (s.valid[bad] == 0).all() and not (s.loss[bad] == 0).any()
    assert "non-finite" in proc.stderr


def test_cap_bounds_divergent_points_and_leaves_the_rest_identical(setup, tmp_path, run_main):
    ref = setup["ref"]
    cap = float(np.quantile(ref.loss, 0.5))
    out = tmp_path / "s.vts"
    proc = run_main(*base(setup, out, "--cap", str(cap)))
    assert proc.returncode == 0, proc.stderr
    s = read_surface(out)
    above = ref.loss >= cap
    assert np.array_equal(s.bounded, s.bounded & above)  # only points above the cap are bounded
    assert s.bounded.sum() >= 0.8 * above.sum()
    assert (s.valid[s.bounded] == 0).all() and (s.loss[s.bounded] >= cap).all()
    free = ~s.bounded
    assert np.array_equal(s.loss[free], ref.loss[free]) and np.array_equal(s.accuracy[free], ref.accuracy[free])
    assert s.meta["forward_samples"] < ref.meta["forward_samples"]


def test_pca_directions_default_to_the_trajectory_extent(setup, tmp_path):
    """No --y for a PCA plane: the axis comes from pipeline.trajectory.pca_grid of the projected run."""
    from pipeline.directions import pca_directions
    from pipeline.surface import complete_grid, default_grid
    from pipeline.trajectory import pca_grid, project_trajectory

    run = RunDir(setup["run"])
    d = pca_directions(run.checkpoints())
    d.save(tmp_path / "pca.pt")
    expected = pca_grid(project_trajectory(run.checkpoints(), d, run.checkpoint(run.epochs()[-1])))
    grid = complete_grid(run, d, "-1:1:5", None)
    assert (grid.nx, grid.xmin, grid.xmax) == (5, -1.0, 1.0)
    assert np.array_equal(grid.ys, expected.ys)  # exactly: 0 stays a grid point
    assert default_grid(run, d) == expected


@pytest.mark.parametrize("extra,env,fragment", [
    (["--merge", "--shard", "0/2"], {}, "--merge assembles the shards' chunks in one process"),
    (["--merge"], {"WORLD_SIZE": "2", "RANK": "0"}, "run it without torchrun"),
    (["--shard", "0/2", "--restart"], {}, "--restart cannot be combined with --shard"),
    (["--chunk-size", "0"], {}, "--chunk-size must be a positive integer"),
    (["--device", "tpu"], {}, "device must be one of 'cpu', 'cuda'"),
])
def test_conflicting_options_are_one_line_errors(setup, tmp_path, run_main, monkeypatch, extra, env, fragment):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "s.vts"
    assert_one_line_error(run_main(*base(setup, out, *extra)), fragment)
    assert not parts_dir(out).exists()


def test_output_must_be_a_vts(setup, tmp_path, run_main):
    assert_one_line_error(run_main(*base(setup, tmp_path / "s.vtk")), "--out must end in .vts")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_resumes_bitwise_and_agrees_with_the_cpu(setup, tmp_path, run_main):
    """On a GPU machine: data resident on the device, deterministic mode, resumed == uninterrupted."""
    gpu = [a if a != "cpu" else "cuda" for a in SMALL]
    args = ["--run", str(setup["run"]), "--directions", str(setup["dirs"]), *gpu]
    assert run_main(*args, "--out", str(tmp_path / "ref.vts")).returncode == 0
    assert run_main(*args, "--shard", "1/2", "--out", str(tmp_path / "s.vts")).returncode == 0
    proc = run_main(*args, "--out", str(tmp_path / "s.vts"))
    assert proc.returncode == 0 and "resumed: 8 of 16 chunks" in proc.stderr
    ref, got = read_surface(tmp_path / "ref.vts"), read_surface(tmp_path / "s.vts")
    same_grid(got, ref)
    assert ref.meta["device"] == "cuda" and ref.meta["engine"]["plan"]["device"].startswith("cuda")
    np.testing.assert_allclose(ref.loss, setup["ref"].loss, rtol=1e-4)
    bf16 = run_main(*args, "--precision", "bf16", "--out", str(tmp_path / "bf16.vts"))
    assert bf16.returncode == 0
    np.testing.assert_allclose(read_surface(tmp_path / "bf16.vts").loss, setup["ref"].loss, rtol=0.05)


def test_bf16_is_opt_in_and_close_to_fp32(setup, tmp_path, run_main):
    out = tmp_path / "bf16.vts"
    proc = run_main(*base(setup, out, "--precision", "bf16"))
    assert proc.returncode == 0, proc.stderr
    s, ref = read_surface(out), setup["ref"]
    assert s.meta["precision"] == "bf16" and ref.meta["precision"] == "fp32"
    assert s.meta["engine"]["plan"]["precision"] == "bf16"
    assert not np.array_equal(s.loss, ref.loss)  # really another precision
    np.testing.assert_allclose(s.loss, ref.loss, rtol=0.05)


def test_a_rerun_keeps_a_finished_surface_and_a_change_computes_it_again(setup, tmp_path, run_main):
    out = tmp_path / "k.vts"
    assert run_main(*base(setup, out)).returncode == 0
    stamp = out.stat().st_mtime_ns
    proc = run_main(*base(setup, out))
    assert proc.returncode == 0 and "already holds this surface" in proc.stderr and "evaluated" not in proc.stderr
    assert out.stat().st_mtime_ns == stamp and proc.stdout.strip() == str(out)
    proc = run_main(*base(setup, out, "--restart"))
    assert "evaluated 63 points" in proc.stderr and out.stat().st_mtime_ns != stamp
    proc = run_main(*base(setup, out, "--split", "test"))  # another computation: not kept
    assert proc.returncode == 0 and "evaluated 63 points" in proc.stderr
