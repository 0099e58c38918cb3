"""Volumes: the lattice, three directions, the engine's third term, the .vti file, and `lossvista
volume` end to end (its slice through the centre is the plane bit for bit; resume after SIGKILL,
shards and merge give the uninterrupted volume)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from pipeline.datamodel import Grid, Lattice, Surface, Volume
from pipeline.directions import Directions, pca_directions, random_directions, stack_directions
from pipeline.errors import ParameterError
from pipeline.rundir import RunDir
from pipeline.surface import ChunkStore, parts_dir
from pipeline.vtkio import read_grid, read_surface, read_trajectory, read_volume, write_volume
from pipeline.vtkio._core import VTKFileError

from .conftest import HANG_GUARD, ROOT, assert_one_line_error, hold_after, wait_for_chunks

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
SMALL = ["--x", "-1:1:5", "--y", "-1:1:5", "--z", "-1:1:3", "--chunk-size", "4", "--device", "cpu",
         "--max-samples", "300"]  # 75 points, 19 chunks


# -- the lattice and the volume -------------------------------------------------------------------

def test_lattice_layout_and_centre():
    g = Lattice(-1, 1, 3, -2, 2, 5, 0, 1, 2)
    c = g.coords()
    assert c.shape == (30, 3)
    a, b, z = np.meshgrid(g.xs, g.ys, g.zs, indexing="ij")
    k = (1 * 5 + 3) * 2 + 1  # flat index of (i, j, l) = (1, 3, 1)
    assert tuple(c[k]) == (a[1, 3, 1], b[1, 3, 1], z[1, 3, 1]) == (0.0, 1.0, 1.0)
    assert g.centre_index() == (1, 2, 0) and Lattice(-1, 1, 4).centre_index() is None
    assert g.plane() == Grid(-1, 1, 3, -2, 2, 5)
    assert Lattice.from_dict(g.to_dict()) == g == Lattice.from_specs("-1:1:3", "-2:2:5", "0:1:2")


@pytest.mark.parametrize("kwargs,fragment", [({"nz": 0}, "nz must be a positive integer"),
                                             ({"zmin": 1.0, "zmax": 1.0}, "zmin must be < zmax"),
                                             ({"nx": 1000, "ny": 1000, "nz": 1000}, "too large")])
def test_lattice_refuses_bad_fields(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        Lattice(**kwargs)


def test_volume_slice_is_a_surface_and_shapes_are_checked():
    g = Lattice(-1, 1, 3, -1, 1, 3, -1, 1, 5)
    loss = np.arange(45.0).reshape(3, 3, 5)
    v = Volume(g, loss, extra={"basin": np.zeros((3, 3, 5), np.int32)})
    s = v.slice(2)
    assert isinstance(s, Surface) and s.grid == g.plane() and np.array_equal(s.loss, loss[:, :, 2])
    assert "basin" in s.extra and v.centre_value() == loss[1, 1, 2]
    with pytest.raises(ValueError, match=r"\(nx, ny, nz\)"):
        Volume(g, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Lattice"):
        Volume(Grid(-1, 1, 3, -1, 1, 3), np.zeros((3, 3)))


def test_volume_file_round_trip(tmp_path):
    g = Lattice(-0.5, 1.5, 5, -1, 1, 4, -2, 0, 3)
    rng = np.random.default_rng(0)
    loss = rng.random(g.shape)
    loss[0, 1, 2] = np.nan
    bounded = np.zeros(g.shape, bool)
    bounded[4, 3, 0] = True
    v = Volume(g, loss, accuracy=rng.random(g.shape), bounded=bounded, meta={"direction_kind": "random", "x": 1},
               extra={"basin": rng.integers(-1, 3, g.shape).astype(np.int32)})
    path = write_volume(tmp_path / "volume_random.vti", v)
    back = read_volume(path)
    assert back.grid == g and back.meta["content"] == "volume" and back.meta["x"] == 1
    for name in ("loss", "accuracy", "bounded"):
        assert np.array_equal(getattr(back, name), getattr(v, name), equal_nan=True)
    assert back.extra["basin"].dtype == np.int32 and np.array_equal(back.extra["basin"], v.extra["basin"])
    assert np.array_equal(back.valid, v.valid)
    assert isinstance(read_grid(path), Volume)
    with pytest.raises(VTKFileError, match="read_volume"):
        read_surface(path)
    # VTK's own reading of the file: point k = i + nx*j + nx*ny*l at origin + spacing * (i, j, l)
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOXML import vtkXMLImageDataReader

    r = vtkXMLImageDataReader()
    r.SetFileName(str(path))
    r.Update()
    img = r.GetOutput()
    flat = vtk_to_numpy(img.GetPointData().GetArray("loss"))
    k = 3 + 5 * 2 + 5 * 4 * 1
    assert flat[k] == loss[3, 2, 1]
    assert img.GetPoint(k) == pytest.approx((g.xs[3], g.ys[2], g.zs[1]))


# -- three directions -----------------------------------------------------------------------------

def test_random_volume_directions_extend_the_plane(digits_run):
    centre = RunDir(digits_run).checkpoint(3)
    d2 = random_directions(centre, seed=4)
    d3 = random_directions(centre, seed=4, ndim=3)
    assert d3.ndim == 3 and d3.z is not None
    for k in d2.x:
        assert torch.equal(d2.x[k], d3.x[k]) and torch.equal(d2.y[k], d3.y[k])
    assert abs(d3.meta["cosine_xz"]) < 0.05 and abs(d3.meta["cosine_yz"]) < 0.05
    assert d3.digest() != d2.digest() and d3.plane().digest() == d2.digest()


def test_pca_third_component(digits_run):
    run = RunDir(digits_run)
    d2 = pca_directions(run.checkpoints(), centre=run.checkpoint(3))
    d3 = pca_directions(run.checkpoints(), centre=run.checkpoint(3), ndim=3)
    for k in d2.x:  # PC1 and PC2 do not depend on how many components are asked for
        assert torch.equal(d2.x[k], d3.x[k]) and torch.equal(d2.y[k], d3.y[k])
    ev = d3.meta["explained_variance"]
    assert len(ev) == 3 and ev[:2] == d2.meta["explained_variance"] and 0 < ev[2] <= ev[1] and sum(ev) <= 1 + 1e-9
    # against an SVD of the centred differences (4 checkpoints: 3 components carry all the variance)
    from pipeline.checkpoints import load_checkpoint

    keys = [k for k, v in d3.x.items() if v.any()]
    rows = []
    c = load_checkpoint(run.checkpoint(3))
    for p in run.checkpoints():
        s = load_checkpoint(p)
        rows.append(torch.cat([(s[k] - c[k]).double().ravel() for k in keys]))
    D = torch.stack(rows).numpy()
    D -= D.mean(axis=0)
    _, sv, vt = np.linalg.svd(D, full_matrices=False)
    z = torch.cat([d3.z[k].double().ravel() for k in keys]).numpy()
    assert abs(abs(z @ vt[2]) - 1) < 1e-5
    assert ev[2] == pytest.approx(sv[2] ** 2 / (sv ** 2).sum(), rel=1e-6)


def test_directions_files_keep_z_and_old_files_read(tmp_path, digits_run):
    centre = RunDir(digits_run).checkpoint(3)
    d3 = random_directions(centre, seed=0, ndim=3)
    back = Directions.load(d3.save(tmp_path / "d3.pt"))
    assert back.ndim == 3 and back.digest() == d3.digest()
    d2 = random_directions(centre, seed=0)
    raw = torch.load(d2.save(tmp_path / "d2.pt"), weights_only=True)
    assert "z" not in raw  # a plane's file is what it always was
    assert Directions.load(tmp_path / "d2.pt").ndim == 2


def test_stack_directions(tmp_path, digits_run):
    centre = RunDir(digits_run).checkpoint(3)
    files = []
    for seed in (1, 2, 3):
        files.append(random_directions(centre, seed=seed, ndim=1).save(tmp_path / f"d{seed}.pt"))
    d = stack_directions(files)
    assert d.ndim == 3 and d.kind == "stacked" and [s["file"] for s in d.meta["sources"]] == [str(f) for f in files]
    assert torch.equal(d.z["conv1.weight"], Directions.load(files[2]).x["conv1.weight"])
    other = random_directions(RunDir(digits_run).checkpoint(1), seed=9, ndim=1).save(tmp_path / "o.pt")
    with pytest.raises(Exception, match="other weights"):
        stack_directions([files[0], files[1], other])
    with pytest.raises(ValueError, match="three directions"):
        stack_directions(files[:2])


def test_trajectory_in_a_volume_projects_exactly(digits_run):
    from pipeline.checkpoints import load_checkpoint
    from pipeline.trajectory import pca_grid, project_trajectory

    run = RunDir(digits_run)
    d = random_directions(run.checkpoint(3), seed=5, ndim=3)
    centre = load_checkpoint(run.checkpoint(3))
    points = [d.point(centre, 0.3, -0.2, 0.7), d.point(centre, -0.1, 0.05, -0.4), centre]
    t = project_trajectory(points, d, centre)
    assert t.coords.shape == (3, 3) and t.meta["ndim"] == 3
    np.testing.assert_allclose(t.coords, [[0.3, -0.2, 0.7], [-0.1, 0.05, -0.4], [0, 0, 0]], atol=1e-6)
    assert t.residual.max() < 1e-5
    g = pca_grid(t, n=9)
    assert isinstance(g, Lattice) and g.centre_index() is not None
    assert g.zmin <= -0.4 and g.zmax >= 0.7


# -- lossvista volume -----------------------------------------------------------------------------

def cli(*args: str, timeout: float = HANG_GUARD) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **ENV})


@pytest.fixture(scope="module")
def volume_run(digits_run, tmp_path_factory):
    """A copy of the digits run with its random plane and the random volume around it (5 x 5 x 3)."""
    import shutil

    root = tmp_path_factory.mktemp("vol") / "run"
    shutil.copytree(digits_run, root)
    proc = cli("directions", "--run", str(root), "--kind", "random", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    proc = cli("surface", "--run", str(root), "--directions", str(root / "directions" / "random.pt"),
               "--x", "-1:1:5", "--y", "-1:1:5", "--device", "cpu", "--max-samples", "300")
    assert proc.returncode == 0, proc.stderr
    proc = cli("volume", "--run", str(root), "--kind", "random", *SMALL)
    assert proc.returncode == 0, proc.stderr
    return root, proc


def test_volume_command_writes_the_volume_and_its_path(volume_run):
    root, proc = volume_run
    assert proc.stdout.strip() == str(root / "volume_random.vti")
    assert "volume 5x5x3: 75 of 75 points valid" in proc.stderr
    v = read_volume(root / "volume_random.vti")
    assert v.grid == Lattice(-1, 1, 5, -1, 1, 5, -1, 1, 3) and v.meta["direction_kind"] == "random"
    assert v.meta["directions"]["seed"] == 3  # the random plane's seed
    assert v.meta["centre_loss"] == v.loss[2, 2, 1]
    path = read_trajectory(root / "trajectory_volume_random.vtp")
    assert path.coords.shape == (4, 3) and np.allclose(path.coords[-1], 0)


def test_quick_looks_refuse_what_only_paraview_draws(volume_run, tmp_path):
    """No silent success with nothing written: the volumes and 3d_contours are ParaView's alone."""
    from pipeline.errors import LossvistaError
    from pipeline.rundir import RunDir
    from pipeline.workflow import render_pictures

    root, _ = volume_run
    with pytest.raises(LossvistaError, match=r"the volumes \(volume_random\) are drawn by ParaView only"):
        render_pictures(RunDir(root), backend="pyvista", planes=["volume_random"], out=tmp_path / "a")
    with pytest.raises(LossvistaError, match="3d_contours is a ParaView view"):
        render_pictures(RunDir(root), backend="pyvista", planes=["random"], views=["3d_contours"], out=tmp_path / "b")
    said: list[str] = []
    drawn = render_pictures(RunDir(root), backend="pyvista", planes=["random"], views=["3d_contours", "2d_contours"],
                            out=tmp_path / "c", notice=said.append)
    assert [p.name for p in drawn] == ["random_2d_contours.png"] and said == [
        "the quick looks have no 3d_contours view; skipped"]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_central_slice_is_the_plane_bit_for_bit(volume_run):
    root, _ = volume_run
    v = read_volume(root / "volume_random.vti")
    s = read_surface(root / "surface_random.vts")
    l0 = v.grid.centre_index()[2]
    for name in ("loss", "accuracy"):
        assert np.array_equal(getattr(v, name)[:, :, l0], getattr(s, name))
    assert not np.array_equal(v.loss[:, :, 0], s.loss)


def test_volume_shards_then_merge_equal_a_single_run(volume_run, tmp_path):
    root, _ = volume_run
    out = tmp_path / "v.vti"
    args = ["volume", "--run", str(root), "--directions", str(root / "directions" / "random_3d.pt"), *SMALL,
            "--out", str(out)]
    for i in (1, 0):
        proc = cli(*args, "--shard", f"{i}/2")
        assert proc.returncode == 0, proc.stderr
        assert not out.exists()
    proc = cli(*args, "--merge")
    assert proc.returncode == 0, proc.stderr
    a, b = read_volume(out), read_volume(root / "volume_random.vti")
    for name in ("loss", "accuracy", "bounded"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)


@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD)
def test_sigkill_then_rerun_gives_the_uninterrupted_volume(volume_run, tmp_path):
    root, _ = volume_run
    args = ["volume", "--run", str(root), "--directions", str(root / "directions" / "random_3d.pt"),
            "--x", "-1:1:7", "--y", "-1:1:5", "--z", "-1:1:5", "--chunk-size", "3", "--batch-size", "64",
            "--device", "cpu"]  # 175 points, 59 chunks
    ref = tmp_path / "ref.vti"
    assert cli(*args, "--out", str(ref)).returncode == 0
    out = tmp_path / "v.vti"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args, "--out", str(out)], cwd=ROOT,
                            env={**os.environ, **ENV, **hold_after(3)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_chunks(parts_dir(out), 3, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
    done = ChunkStore(parts_dir(out)).chunk_ids()
    assert 3 <= len(done) < 59 and not out.exists()
    rerun = cli(*args, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed: {len(done)} of 59 chunks" in rerun.stderr
    a, b = read_volume(out), read_volume(ref)
    for name in ("loss", "accuracy", "bounded"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)


@pytest.mark.parametrize("args,fragment", [
    (["--kind", "random", "--x", "-1:1:5", "--y", "-1:1:5", "--z", "1:-1:3"], "--z needs min < max"),
    (["--kind", "random", "--out", "v.vts"], "--out must end in .vti"),
    (["--directions", "a.pt", "b.pt"], "one file of three directions or three files"),
    (["--kind", "pca", "--seed", "3"], "--seed applies to --kind random only"),
])
def test_volume_bad_input_is_one_line(volume_run, args, fragment):
    root, _ = volume_run
    proc = cli("volume", "--run", str(root), *args)
    assert_one_line_error(proc, fragment)


def test_surface_refuses_three_directions_and_z_needs_them(volume_run):
    root, _ = volume_run
    proc = cli("surface", "--run", str(root), "--directions", str(root / "directions" / "random_3d.pt"))
    assert_one_line_error(proc, "holds three directions", "lossvista volume")
    with pytest.raises(ParameterError, match="needs three directions"):
        from pipeline.surface import complete_grid

        complete_grid(RunDir(root), Directions.load(root / "directions" / "random.pt"), None, None, z="-1:1:3")


# -- analysis and comparison of volumes -----------------------------------------------------------

def test_analyze_a_volume_writes_3d_files(volume_run, tmp_path):
    import json
    import shutil

    from pipeline.vtkio import read_points

    root, _ = volume_run
    path = tmp_path / "volume_random.vti"
    shutil.copy(root / "volume_random.vti", path)
    proc = cli("analyze", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "on a 5x5x3 lattice" in proc.stdout and "1-saddle" in proc.stdout and "gamma" in proc.stdout
    doc = json.loads((tmp_path / "topology_volume_random.json").read_text())
    assert doc["shape"] == [5, 5, 3] and doc["meta"]["kind"] == "volume_random"
    assert set(doc["counts"]) == {"minimum", "1-saddle", "2-saddle", "maximum", "degenerate"}
    coords, arrays, meta = read_points(tmp_path / "critical_points_volume_random.vtp")
    assert coords.shape == (len(doc["critical_points"]), 3) and meta["ndim"] == 3
    assert set(arrays["CriticalType"].tolist()) <= {0, 1, 2, 3, 4}
    v = read_volume(path)
    assert v.extra["basin"].shape == (5, 5, 3) and (v.extra["basin"] >= 0).all()


def test_compare_volumes(volume_run, tmp_path):
    import shutil

    root, _ = volume_run
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(root / "volume_random.vti", tmp_path / name / "volume_random.vti")
    proc = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--plane", "volume_random",
               "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "(α, β, γ)" in proc.stdout
    assert (tmp_path / "out" / "compare_volume_random.json").is_file()
    assert (tmp_path / "out" / "compare_volume_random.png").is_file()
    # files name their kind themselves: no --plane needed, and a surface is not compared with a volume
    files = [str(tmp_path / name / "volume_random.vti") for name in ("a", "b")]
    proc = cli("compare", *files, "--out", str(tmp_path / "files"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "files" / "compare_volume_random.json").is_file()
    proc = cli("compare", files[0], str(root / "surface_random.vts"), "--out", str(tmp_path / "mixed"))
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"lossvista compare: error: '{root / 'surface_random.vts'}' is a 'random' plane, not 'volume_random'"]


def test_rerunning_a_finished_volume_keeps_it(volume_run):
    root, _ = volume_run
    target = root / "volume_random.vti"
    before = (target.stat().st_mtime_ns, target.read_bytes())
    proc = cli("volume", "--run", str(root), "--kind", "random", *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert (target.stat().st_mtime_ns, target.read_bytes()) == before  # the same fingerprint: nothing evaluated
    said = [line for line in proc.stderr.splitlines() if "already holds" in line]
    assert said == [f"{target} already holds this volume (the same fingerprint): kept; pass --restart to compute it "
                    f"again"], proc.stderr  # once, and named a volume


def test_make_volume_as_run_does(volume_run, tmp_path):
    """`lossvista run --volume`'s step: directions, path, volume on its default lattice, analysis."""
    import shutil

    from pipeline.engine import EvalConfig
    from pipeline.rundir import RunDir
    from pipeline.workflow.volume import make_volume

    root = shutil.copytree(volume_run[0], tmp_path / "run")
    made = make_volume(RunDir(root), "pca", points=3, eval_config=EvalConfig(device="cpu", max_samples=200))
    assert [p.name for p in made["files"]] == ["pca_3d.pt", "trajectory_volume_pca.vtp", "volume_pca.vti",
                                               "critical_points_volume_pca.vtp", "topology_volume_pca.json"]
    v = read_volume(root / "volume_pca.vti")
    assert v.grid.shape == (3, 3, 3) and len(v.meta["directions"]["explained_variance"]) == 3
    assert made["topology"].ndim == 3 and "basin" in v.extra
