"""Chunk store, resume, shards/merge and fault handling of the surface stage (pipeline.surface).

These tests drive the real store and runner with a cheap deterministic evaluator (a closed-form
"loss" of the coordinates), so every fault can be provoked exactly; tests/test_surface_cli.py
runs the same machinery end to end on a trained model, with SIGKILL and torchrun.
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.datamodel import Grid
from pipeline.errors import LossvistaError
from pipeline.surface import (ChunkPlan, ChunkStore, ConfigMismatchError, CorruptChunkError, ResumeOptions, Shard,
                              auto_chunk_size, evaluate_surface, merge_surface, parts_dir)
from pipeline.surface import store as store_mod
from pipeline.surface.store import fingerprint_of
from pipeline.vtkio import read_surface
from .conftest import HANG_GUARD, as_cli

GRID = Grid(-1.0, 1.0, 9, -0.5, 1.5, 7)
IDENTITY = {"directions_sha256": "abc", "grid": GRID.to_dict(), "eval": {"cap": None}}
OPTS = ResumeOptions(chunk_size=4)  # 63 points -> 16 chunks, the last one of 3 points


class Evaluator:
    """loss = a^2 + b^2 + 0.25 (a bowl), NaN/inf at chosen points, bounded above ``cap``; counts calls."""

    def __init__(self, cap: float | None = None, fail_after: int | None = None, nonfinite: bool = False):
        self.cap, self.fail_after, self.nonfinite = cap, fail_after, nonfinite
        self.points = 0
        self.calls = 0

    def __call__(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # stands for a kill: nothing of this chunk may survive
        self.calls += 1
        self.points += len(coords)
        a, b = coords[:, 0], coords[:, 1]
        loss = a ** 2 + b ** 2 + 0.25
        if self.nonfinite:
            loss = np.where((a == 1.0) & (b == 1.5), np.nan, loss)
            loss = np.where((a == -1.0) & (b == 1.5), np.inf, loss)
        bounded = np.zeros(len(a), bool) if self.cap is None else loss >= self.cap
        return {"loss": loss, "accuracy": 1.0 / (1.0 + np.nan_to_num(loss, nan=1.0, posinf=1.0)),
                "bounded": bounded, "samples": np.where(bounded, 3, 100)}


def _reference(tmp_path: Path, **kw) -> "np.ndarray":
    out = tmp_path / "ref" / "s.vts"
    evaluate_surface(Evaluator(**kw), GRID, out, identity=IDENTITY, options=OPTS)
    return read_surface(out)


def _equal(a, b) -> bool:
    return np.array_equal(a, b, equal_nan=True)


# -- plan and shards ------------------------------------------------------------------------------

@pytest.mark.parametrize("n,size", [(63, 4), (63, 63), (63, 100), (1, 1), (2601, 41)])
def test_plan_covers_every_point_once(n, size):
    plan = ChunkPlan(n, size)
    seen = np.concatenate([np.arange(*plan.bounds(c)) for c in range(plan.n_chunks)])
    assert np.array_equal(seen, np.arange(n))
    with pytest.raises(IndexError):
        plan.bounds(plan.n_chunks)


def test_auto_chunk_size_depends_on_grid_size_only():
    assert auto_chunk_size(63) == 8 and auto_chunk_size(2601) == 41 and auto_chunk_size(10**6) == 256
    assert ChunkPlan(2601, auto_chunk_size(2601)).n_chunks == 64


@pytest.mark.parametrize("spec", ["1", "2/2", "-1/3", "a/b", "1/0", "0/1/2"])
def test_shard_spec_errors_name_the_option(spec):
    with pytest.raises(ValueError, match="shard must look like 'i/k'") as info:
        Shard.parse(spec)
    assert as_cli(info.value).startswith("--shard must look like 'i/k'")


def test_shards_interleave_and_partition():
    plan = ChunkPlan(63, 4)
    shards = [Shard.parse(f"{i}/3") for i in range(3)]
    owned = [[c for c in range(plan.n_chunks) if s.owns(c)] for s in shards]
    assert owned[0] == [0, 3, 6, 9, 12, 15]
    assert sorted(sum(owned, [])) == list(range(plan.n_chunks))


# -- resume ---------------------------------------------------------------------------------------

def test_interrupted_run_resumes_to_the_same_grid(tmp_path):
    ref = _reference(tmp_path)
    out = tmp_path / "s.vts"
    with pytest.raises(KeyboardInterrupt):
        evaluate_surface(Evaluator(fail_after=5), GRID, out, identity=IDENTITY, options=OPTS)
    assert not out.exists()
    store = ChunkStore(parts_dir(out))
    assert store.chunk_ids() == [0, 1, 2, 3, 4]
    assert not [p for p in store.root.iterdir() if p.name.endswith(".tmp")]  # nothing half-written
    again = Evaluator()
    outcome = evaluate_surface(again, GRID, out, identity=IDENTITY, options=OPTS)
    assert outcome.resumed == 5 and outcome.computed == 11 and again.points == 63 - 20
    got = read_surface(out)
    for name in ("loss", "accuracy", "bounded"):
        assert _equal(getattr(got, name), getattr(ref, name)), name
    assert got.meta["forward_samples"] == ref.meta["forward_samples"] == 6300
    assert not parts_dir(out).exists()  # removed after the .vts is written


def test_keep_parts_keeps_the_work_directory(tmp_path):
    out = tmp_path / "s.vts"
    evaluate_surface(Evaluator(), GRID, out, identity=IDENTITY, options=ResumeOptions(chunk_size=4, keep_parts=True))
    assert ChunkStore(parts_dir(out)).chunk_ids() == list(range(16))
    manifest = json.loads((parts_dir(out) / "manifest.json").read_text())
    assert manifest["fingerprint"] == fingerprint_of(IDENTITY) and manifest["plan"]["n_chunks"] == 16


def test_changed_configuration_is_refused_unless_restart(tmp_path):
    out = tmp_path / "s.vts"
    with pytest.raises(KeyboardInterrupt):
        evaluate_surface(Evaluator(fail_after=3), GRID, out, identity=IDENTITY, options=OPTS)
    other = {**IDENTITY, "eval": {"cap": 2.0}}
    with pytest.raises(ConfigMismatchError, match=r"another configuration \(eval.cap: null vs 2.0\); pass restart") as e:
        evaluate_surface(Evaluator(), GRID, out, identity=other, options=OPTS)
    assert "pass --restart to discard them, or choose another --out" in as_cli(e.value)
    with pytest.raises(ConfigMismatchError, match="chunks"):  # another chunk size is another plan
        evaluate_surface(Evaluator(), GRID, out, identity=IDENTITY, options=ResumeOptions(chunk_size=5))
    assert ChunkStore(parts_dir(out)).chunk_ids() == [0, 1, 2]  # refused: nothing touched
    fresh = Evaluator(cap=2.0)
    outcome = evaluate_surface(fresh, GRID, out, identity=other, options=ResumeOptions(chunk_size=4, restart=True))
    assert outcome.resumed == 0 and fresh.points == 63
    assert read_surface(out).bounded.any()


# -- corrupted chunks -----------------------------------------------------------------------------

def _flip_payload_byte(p: Path) -> None:
    raw = bytearray(p.read_bytes())
    raw[-20] ^= 0x01
    p.write_bytes(bytes(raw))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-30])


def _garbage(p: Path) -> None:
    p.write_bytes(b"\x00" * 64)


@pytest.mark.parametrize("damage,reason", [(_flip_payload_byte, "checksum mismatch"), (_truncate, "truncated"),
                                           (_garbage, "not a lossvista chunk")])
def test_corrupted_chunk_is_detected_moved_aside_and_recomputed(tmp_path, damage, reason, caplog):
    ref = _reference(tmp_path)
    out = tmp_path / "s.vts"
    with pytest.raises(KeyboardInterrupt):
        evaluate_surface(Evaluator(fail_after=6), GRID, out, identity=IDENTITY, options=OPTS)
    store = ChunkStore(parts_dir(out))
    damage(store.chunk_path(2))
    with pytest.raises(CorruptChunkError, match=reason):
        store.read_chunk(2, ChunkPlan(63, 4), fingerprint_of(IDENTITY))
    again = Evaluator()
    outcome = evaluate_surface(again, GRID, out, identity=IDENTITY, options=ResumeOptions(chunk_size=4,
                                                                                         keep_parts=True))
    assert outcome.recomputed == [2] and outcome.resumed == 5 and again.calls == 16 - 5
    assert any(reason in r.getMessage() and "recomputing" in r.getMessage() for r in caplog.records)
    assert len(list(store.root.glob("chunk_000002.bin.corrupt-*"))) == 1  # kept for inspection
    assert _equal(read_surface(out).loss, ref.loss)


def test_chunk_of_another_configuration_or_place_is_rejected(tmp_path):
    store = ChunkStore(tmp_path / "p")
    store.root.mkdir()
    plan = ChunkPlan(63, 4)
    coords = GRID.coords()[8:12]
    arrays = Evaluator()(coords)
    store.write_chunk(2, 8, 12, coords, arrays, "fp-a")
    assert store.read_chunk(2, plan, "fp-a").arrays["loss"].shape == (4,)
    with pytest.raises(CorruptChunkError, match="another configuration"):
        store.read_chunk(2, plan, "fp-b")
    os.replace(store.chunk_path(2), store.chunk_path(3))
    with pytest.raises(CorruptChunkError, match="expected 12:16"):
        store.read_chunk(3, plan, "fp-a")


# -- shards and merge -----------------------------------------------------------------------------

def test_shards_then_merge_equal_a_single_run(tmp_path):
    ref = _reference(tmp_path, nonfinite=True)
    out = tmp_path / "s.vts"
    counts = []
    for i in (2, 0, 1):  # any order
        ev = Evaluator(nonfinite=True)
        outcome = evaluate_surface(ev, GRID, out, identity=IDENTITY,
                                   options=ResumeOptions(chunk_size=4, shard=Shard(i, 3)))
        counts.append(ev.calls)
        assert outcome.written is None and not out.exists()
    assert sorted(counts) == [5, 5, 6] and sum(counts) == 16
    assert sorted(p.name for p in parts_dir(out).glob("shard_*")) == [f"shard_{i}-of-3.json" for i in range(3)]
    again = evaluate_surface(Evaluator(), GRID, out, identity=IDENTITY,  # a rerun shard has nothing to do
                             options=ResumeOptions(chunk_size=4, shard=Shard(0, 3)))
    assert (again.resumed, again.computed, again.missing) == (6, 0, [])
    merged = merge_surface(GRID, out, identity=IDENTITY, options=OPTS)
    got = read_surface(out)
    assert merged.written == out and not parts_dir(out).exists()
    for name in ("loss", "accuracy", "bounded", "valid"):
        assert _equal(getattr(got, name), getattr(ref, name)), name


def test_merge_names_missing_chunks_and_the_shards_to_rerun(tmp_path):
    out = tmp_path / "s.vts"
    for i in (0, 2):
        evaluate_surface(Evaluator(), GRID, out, identity=IDENTITY, options=ResumeOptions(chunk_size=4, shard=Shard(i, 3)))
    with pytest.raises(LossvistaError) as info:
        merge_surface(GRID, out, identity=IDENTITY, options=OPTS)
    msg = as_cli(info.value)
    assert "5 of 16 chunks missing (1, 4, 7, 10, 13)" in msg and "--shard 1/3" in msg and "\n" not in msg
    assert not out.exists() and parts_dir(out).is_dir()  # nothing written, nothing lost
    _flip_payload_byte(ChunkStore(parts_dir(out)).chunk_path(3))
    with pytest.raises(LossvistaError, match=r"1 corrupted \(3: checksum mismatch\).*shard 0/3, shard 1/3") as e:
        merge_surface(GRID, out, identity=IDENTITY, options=OPTS)
    assert "--shard 0/3, --shard 1/3" in as_cli(e.value)
    with pytest.raises(ConfigMismatchError):
        merge_surface(GRID, out, identity={**IDENTITY, "split": "test"}, options=OPTS)


def test_merge_without_shards_says_so(tmp_path):
    with pytest.raises(LossvistaError, match="nothing to merge: .* holds no manifest; run the shards first"):
        merge_surface(GRID, tmp_path / "s.vts", identity=IDENTITY, options=OPTS)


def test_restart_with_shard_is_refused(tmp_path):
    with pytest.raises(ValueError, match="restart cannot be combined with shard") as e:
        evaluate_surface(Evaluator(), GRID, tmp_path / "s.vts", identity=IDENTITY,
                         options=ResumeOptions(shard=Shard(0, 2), restart=True))
    assert as_cli(e.value).startswith("--restart cannot be combined with --shard")


# -- faults ---------------------------------------------------------------------------------------

def test_disk_full_while_writing_a_chunk_keeps_finished_chunks(tmp_path, monkeypatch):
    ref = _reference(tmp_path)
    out = tmp_path / "s.vts"
    real_fsync = os.fsync

    def fsync(fd):  # chunk 4's data cannot be flushed to its temp file: the disk is full
        if ".chunk_000004.bin." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    with pytest.raises(LossvistaError) as info:
        evaluate_surface(Evaluator(), GRID, out, identity=IDENTITY, options=OPTS)
    msg = str(info.value)
    assert "cannot write chunk 4" in msg and "No space left on device" in msg and "4 chunk(s)" in msg
    assert "rerun the same command to resume" in msg and "\n" not in msg
    store = ChunkStore(parts_dir(out))
    assert store.chunk_ids() == [0, 1, 2, 3] and not out.exists()
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]  # temp file removed
    monkeypatch.setattr(store_mod.os, "fsync", real_fsync)
    outcome = evaluate_surface(Evaluator(), GRID, out, identity=IDENTITY, options=OPTS)
    assert outcome.resumed == 4 and _equal(read_surface(out).loss, ref.loss)


def test_unwritable_output_directory_is_refused_before_any_work(tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits; sysfs is read-only even for root
        target = Path("/sys") / "s.vts"
        if os.access("/sys", os.W_OK) and Path("/sys").is_dir():
            try:
                (Path("/sys") / ".lossvista-probe").touch()
                pytest.skip("/sys is writable here")
            except OSError:
                pass
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "s.vts"
    ev = Evaluator()
    with pytest.raises(LossvistaError, match=f"output directory {target.parent} is not writable"):
        evaluate_surface(ev, GRID, target, identity=IDENTITY, options=OPTS)
    assert ev.calls == 0
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LossvistaError, match="file is a file, not a folder"):
        evaluate_surface(ev, GRID, blocker / "s.vts", identity=IDENTITY, options=OPTS)
    assert ev.calls == 0


def test_nonfinite_losses_stay_nonfinite_and_invalid(tmp_path):
    out = tmp_path / "s.vts"
    evaluate_surface(Evaluator(nonfinite=True), GRID, out, identity=IDENTITY, options=OPTS)
    s = read_surface(out)
    nan_at, inf_at = (8, 6), (0, 6)  # a = +1 / -1 at the top row b = 1.5
    assert np.isnan(s.loss[nan_at]) and np.isposinf(s.loss[inf_at])
    assert s.valid[nan_at] == 0 and s.valid[inf_at] == 0
    assert int((s.valid == 0).sum()) == 2 and (s.loss != 0).all()


def test_bounded_points_are_invalid_and_counted(tmp_path):
    out = tmp_path / "s.vts"
    evaluate_surface(Evaluator(cap=1.0), GRID, out, identity=IDENTITY, options=OPTS)
    s = read_surface(out)
    a, b = np.meshgrid(GRID.xs, GRID.ys, indexing="ij")
    expected = a ** 2 + b ** 2 + 0.25 >= 1.0
    assert np.array_equal(s.bounded, expected) and np.array_equal(s.valid == 0, expected)
    assert s.meta["forward_samples"] == int(3 * expected.sum() + 100 * (~expected).sum())


def test_one_dimensional_grid(tmp_path):
    grid = Grid.from_specs("-1:1:11", None)
    out = tmp_path / "line.vts"
    evaluate_surface(Evaluator(), grid, out, identity={"grid": grid.to_dict()}, options=ResumeOptions(chunk_size=3))
    s = read_surface(out)
    assert s.loss.shape == (11, 1) and np.allclose(s.loss[:, 0], grid.xs ** 2 + 0.25)
    assert s.meta["centre_loss"] == 0.25


# -- the GPU benchmark script (runs here with --smoke) --------------------------------------------

def _gpu_bench():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_resnet56.py"
    spec = importlib.util.spec_from_file_location("gpu_resnet56", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name,bf16", [("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0),
                                       ("NVIDIA H100 NVL", 835.5), ("NVIDIA H200", 989.4),
                                       ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA A100 80GB PCIe", 312.0)])
def test_gpu_peak_table_matches_card_names(name, bf16):
    assert _gpu_bench().card_peaks(name)["bf16"] == bf16
    assert _gpu_bench().card_peaks("Tesla T4") is None


@pytest.mark.slow
def test_gpu_benchmark_smoke_runs_on_the_cpu(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "gpu.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_resnet56.py"
    proc = subprocess.run([sys.executable, str(script), "--smoke", "--json", str(out)], capture_output=True, text=True,
                          timeout=HANG_GUARD, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert 0.2e9 < figures["flops_per_sample"] < 0.3e9  # ResNet-56 on 32x32: ~125 M multiply-adds per image
    rows = {r["mode"]: r for r in figures["rows"]}
    assert set(rows) == {"fp32", "bf16"}  # tf32 needs CUDA
    for r in rows.values():
        assert r["points"] >= 3 and r["points_per_s"] > 0 and r["tflops"] > 0 and r["peak_fraction"] is None
    assert 0 < rows["bf16"]["max_rel_err_vs_fp32"] < 0.05 and rows["fp32"]["max_rel_err_vs_fp32"] == 0
    assert "points/s" in proc.stdout and "TFLOP/s" in proc.stdout


def test_manifest_on_a_filesystem_without_hard_links(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(store_mod.os, "link", no_link)
    out = tmp_path / "s.vts"
    evaluate_surface(Evaluator(), GRID, out, identity=IDENTITY, options=ResumeOptions(chunk_size=4, shard=Shard(0, 2)))
    assert json.loads((parts_dir(out) / "manifest.json").read_text())["fingerprint"] == fingerprint_of(IDENTITY)
    with pytest.raises(ConfigMismatchError):  # the second opener still sees the first one's manifest
        evaluate_surface(Evaluator(), GRID, out, identity={"other": 1}, options=ResumeOptions(chunk_size=4))
    assert not [p for p in parts_dir(out).iterdir() if p.name.endswith(".tmp")]


def test_disk_full_while_writing_the_vts_keeps_every_chunk(tmp_path, monkeypatch):
    out = tmp_path / "s.vts"
    real_fsync = os.fsync

    def fsync(fd):
        if ".s.vts." in os.readlink(f"/proc/self/fd/{fd}"):  # the .vts's temporary file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    with pytest.raises(LossvistaError, match=r"cannot write .*s\.vts \(No space left on device\); all 16 chunks "
                                            r"are kept in .*; rerun the same command to write it"):
        evaluate_surface(Evaluator(), GRID, out, identity=IDENTITY, options=OPTS)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(store_mod.os, "fsync", real_fsync)
    again = Evaluator()
    outcome = evaluate_surface(again, GRID, out, identity=IDENTITY, options=OPTS)
    assert again.calls == 0 and outcome.resumed == 16 and read_surface(out).loss.shape == (9, 7)
