"""The worked examples of examples/, end to end at a small size: the user's own training script,
then ``lossvista import`` (or the Recorder), then ``lossvista run``. Each surface's centre is the
loss the training script itself reports at its final weights."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from pipeline.vtkio import read_surface, read_trajectory

from .conftest import HANG_GUARD, ROOT, run_cli

pytestmark = pytest.mark.slow


def _copy(name, tmp_path):
    folder = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, folder, ignore=shutil.ignore_patterns("ckpt", "runs", "__pycache__"))
    return folder


def _train(folder, *args):
    proc = subprocess.run([sys.executable, "train.py", *args], cwd=folder, capture_output=True, text=True,
                          timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _run(folder, run, *args):
    """``lossvista run`` at 5 x 5: every plane's surface, path, critical points and topology."""
    proc = run_cli("run", "--out", run, "--grid", "5", "--backend", "pyvista", *args, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    for plane in ("random", "pca"):
        for name in (f"trajectory_{plane}.vtp", f"critical_points_{plane}.vtp", f"topology_{plane}.json",
                     f"renders/quicklook/{plane}_2d_contours.png"):
            assert (folder / run / name).is_file(), name
        assert len(read_trajectory(folder / run / f"trajectory_{plane}.vtp").epoch) >= 3
    assert (folder / run / "index.html").is_file()
    return {plane: read_surface(folder / run / f"surface_{plane}.vts") for plane in ("random", "pca")}


def test_regression_example(tmp_path):
    folder = _copy("regression", tmp_path)
    printed = _train(folder, "--epochs", "4")
    train_mse = float(re.findall(r"epoch 4: train mse ([\d.]+)", printed)[0])
    proc = run_cli("import", "--checkpoints", "ckpt/epoch*.pt", "--model", "mymodels:MLP", "--data", "mydata:splits",
                   "--loss", "mse", "--out", "runs/diabetes", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    surfaces = _run(folder, "runs/diabetes")
    for s in surfaces.values():
        assert s.loss_label == "mse" and s.accuracy is None
        assert s.centre_value() == pytest.approx(train_mse, abs=1e-4)
    by_preset = run_cli("run", "--preset", "lossvista.toml", "--out", "runs/preset", "--planes", "random",
                        "--grid", "5", "--backend", "none", "--no-page", cwd=folder)
    assert by_preset.returncode == 0, by_preset.stderr
    assert read_surface(folder / "runs/preset/surface_random.vts").centre_value() == surfaces["random"].centre_value()


def test_classifier_example_records_label_smoothing(tmp_path):
    folder = _copy("classifier", tmp_path)
    _train(folder, "--epochs", "3", "--out", "runs/classifier")
    surfaces = _run(folder, "runs/classifier")
    meta = surfaces["random"].meta
    assert meta["loss_name"] == "cross_entropy" and meta["loss_spec"]["options"] == {"label_smoothing": 0.1}
    assert surfaces["random"].accuracy is not None


def test_charlm_example_counts_steps(tmp_path):
    folder = _copy("charlm", tmp_path)
    printed = _train(folder, "--steps", "20", "--every", "10")
    assert "step 20" in printed
    proc = run_cli("import", "--checkpoints", "ckpt/step_*.pt", "--model", "mymodels:CharTransformer",
                   "--data", "mydata:splits", "--out", "runs/charlm", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert "steps 0..20" in proc.stderr
    surfaces = _run(folder, "runs/charlm", "--max-samples", "64")
    assert surfaces["random"].loss_label == "cross_entropy" and surfaces["pca"].meta["unit"] == "step"
    assert read_trajectory(folder / "runs/charlm/trajectory_pca.vtp").unit == "step"
    assert 0 < surfaces["random"].centre_value() < 5
