"""``lossvista study``: the bundled tiny study end to end, interrupted and resumed, equal to an
uninterrupted one; and the study preset's refusals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.errors import ParameterError
from pipeline.study import load_study, study_names

from .conftest import HANG_GUARD, ROOT, assert_one_line_error, hold_after, run_cli


def _numbers(path):
    """A comparison's JSON without where its files were."""
    data = json.loads(path.read_text())
    for run in data["runs"]:
        run.pop("surface")
        run["meta"].pop("run", None)
        run["meta"].pop("directions_file", None)
    return data


@pytest.mark.slow
def test_an_interrupted_study_resumes_to_the_same_comparison(tmp_path):
    whole = run_cli("study", "--preset", "tiny", "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    for name in ("compare_random.md", "compare_pca.json", "side_by_side_random_2d_contours.png",
                 "side_by_side_pca_3d_surface.png", "digits-cnn/surface_pca.vts", "resnet20/topology_random.json"):
        assert (tmp_path / "whole" / name).is_file(), name
    record = json.loads((tmp_path / "whole" / "study.json").read_text())
    assert set(record["models"]) == {"digits-cnn", "resnet20"} and isinstance(record["wall_seconds"], float)
    assert "| test acc. |" in (tmp_path / "whole" / "compare_random.md").read_text()
    compared = json.loads((tmp_path / "whole" / "compare_random.json").read_text())
    assert [r["threshold"] for r in compared["runs"]] == [0.01, 0.01]  # tiny.toml's [compare], in loss units

    out = tmp_path / "cut"
    args = [sys.executable, "-m", "pipeline", "study", "--preset", "tiny", "--out", str(out), "--backend", "none"]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    held = {**env, **hold_after(1, "resnet20")}  # the second model waits to be stopped
    proc = subprocess.Popen(args, cwd=ROOT, env=held, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline and proc.poll() is None:  # stop it once the first model is finished
        if (out / "study.json").is_file() and "digits-cnn" in json.loads((out / "study.json").read_text())["models"]:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode != 0 and "SIGTERM" in err, err
    first = (out / "digits-cnn" / "surface_random.vts").stat().st_mtime_ns
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert again.returncode == 0, again.stderr
    assert "digits-cnn: finished earlier, kept" in again.stderr
    assert (out / "digits-cnn" / "surface_random.vts").stat().st_mtime_ns == first
    for plane in ("random", "pca"):
        assert _numbers(out / f"compare_{plane}.json") == _numbers(tmp_path / "whole" / f"compare_{plane}.json")
    assert len(json.loads((out / "study.json").read_text())["sessions"]) == 2


@pytest.mark.parametrize("text, fragment", [
    ('models = ["digits-cnn"]', "at least two model names"),
    ('models = ["lenet", "lenet"]', "models must be different"),
    ('models = ["a", "b"]\n[options]\nthreads = 3', "unknown [options] keys ['threads']"),
    ('models = ["a", "b"]\n[train]\nmodel = "lenet"', "must not name a model"),
    ('models = ["a", "b"]\n[train]\nepochs = -1', "epochs must be an integer >= 0"),
    # \x1f: the mark of errors.param, which the command line turns back into the plain name
    ('models = ["a", "b"]\n[compare]\npersistence = 0', "[compare] persistence\x1f must be a positive number"),
    ('models = ["a", "b"]\n[compare]\ncap = 3', "[compare] takes persistence and delta"),
    ('models = ["digits-cnn", "nosuchnet"]', "unknown models ['nosuchnet']"),  # before the first model trains
    ('models = ["a", "b"]\nbogus = 1', "allowed: ['compare', 'description'.*'models', 'name'.*'options'"),
    ('models = ["a", "b"]\n[random_grid]\nx = "-1:1:4"', "must hold the point"),
    ('models = ["digits-cnn", "lenet"]\n[options]\npca_points = 4', "pca_points must be odd"),
])
def test_study_presets_that_are_refused(tmp_path, text, fragment):
    path = tmp_path / "s.toml"
    path.write_text(text + "\n")
    with pytest.raises(ParameterError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load_study(str(path))


def test_bundled_studies_load_and_a_bad_name_is_one_line():
    assert {"fashion", "tiny"} <= set(study_names())
    study = load_study("fashion")
    assert study.models == ["resnet20", "resnet20-noshort", "resnet56", "resnet56-noshort", "vgg9"]
    assert {r.train.dataset for r in study.runs} == {"fashion-mnist"} and study.options.max_samples == 300
    assert study.persistence == 0.05 and study.delta == 0.1
    assert_one_line_error(run_cli("study", "--preset", "nope"), "--preset must be one of 'fashion'")
