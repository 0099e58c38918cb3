"""The user's own training as a run: checkpoints as training loops save them (pipeline.checkpoints
.read_state), ``lossvista import`` and its one-line refusals, the Recorder, and ``lossvista run``
on the result, whose centre value is the user's loss computed here by hand."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline import vtkio
from pipeline.checkpoints import read_state
from pipeline.errors import CheckpointError, ParameterError

from .conftest import assert_one_line_error, run_cli

MODELS = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x):
        return self.body(x)


class Broken(Net):
    def forward(self, x):
        raise RuntimeError("boom in forward")


class Wider(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 9), nn.Tanh(), nn.Linear(9, 1))

    def forward(self, x):
        return self.body(x)
'''

DATA = '''
import torch


def splits():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 4, generator=g)
    y = x[:, :1] - 0.5 * x[:, 1:2]
    return (x[:90], y[:90]), (x[90:], y[90:])


def broken():
    return 42


def streamed():
    """The train split streamed batch by batch (as data too large for memory is)."""
    from torch.utils.data import DataLoader, TensorDataset

    from pipeline.engine.batches import as_eval_data

    (x, y), test = splits()
    return as_eval_data(DataLoader(TensorDataset(x, y), batch_size=16), "train", memory=0), test


def nan_targets():
    (x, y), test = splits()
    return (x, y * float("nan")), test


def nan_input_late():
    (x, y), test = splits()
    x = x.clone()
    x[70, 2] = float("nan")  # past the first batch a quick probe would look at
    return (x, y), test


def numpy_pair():
    (x, y), _ = splits()
    return x.numpy(), y.numpy()


def all_ignored():
    (x, y), _ = splits()
    return x, torch.full((len(x),), -100)


def by_dict():
    (x, y), _ = splits()
    return [{"x": x[i:i + 30], "y": y[i:i + 30]} for i in range(0, 90, 30)]
'''

LOSSES = '''
def mean_only(outputs, targets):
    return ((outputs - targets) ** 2).mean()


def squared(outputs, targets):
    return (outputs - targets) ** 2


def accuracy(outputs, targets):
    return (outputs - targets).abs()


def outputs_only(model, batch):
    return model(batch["x"])


def raises_key(model, batch):
    return model(batch["inputs"]), batch["y"]
'''


@pytest.fixture
def project(tmp_path):
    """A user's project folder: models, data, a loss, and three checkpoints saved as a loop saves them."""
    (tmp_path / "mymodels.py").write_text(MODELS)
    (tmp_path / "mydata.py").write_text(DATA)
    (tmp_path / "mylosses.py").write_text(LOSSES)
    import importlib.util

    spec = importlib.util.spec_from_file_location("_user_models", tmp_path / "mymodels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.Net()
    (tmp_path / "ckpt").mkdir()
    for epoch in (0, 5, 10):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.9).add_(0.05 * torch.randn_like(p))
        torch.save({"epoch": epoch, "model_state_dict": model.state_dict(), "optimizer_state_dict": {}},
                   tmp_path / "ckpt" / f"epoch{epoch}.pt")
    return tmp_path


def _import(project, *extra, out="runs/mine"):
    return run_cli("import", "--checkpoints", "ckpt/epoch*.pt", "--model", "mymodels:Net", "--data", "mydata:splits",
                   "--out", out, *extra, cwd=project)


# checkpoints as training loops save them ---------------------------------------------------------

def _state():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1)).state_dict()


@pytest.mark.parametrize("wrap, kwargs, info", [
    (lambda s: s, {}, {}),
    (lambda s: {"epoch": 7, "model_state_dict": s, "optimizer_state_dict": {}}, {}, {"epoch": 7}),
    (lambda s: {"state_dict": s, "global_step": 40}, {}, {"step": 40}),
    (lambda s: {"step": 3, "model": s}, {}, {"step": 3}),
    (lambda s: {"net": s, "epoch": True}, {}, {}),  # a bool is not an epoch number
    (lambda s: {"ema": s, "weights": s}, {"key": "ema"}, {}),
    (lambda s: {f"module.{k}": v for k, v in s.items()}, {}, {}),  # DataParallel
    (lambda s: {"state_dict": {f"model.{k}": v for k, v in s.items()} | {"loss_fn.w": torch.ones(1)}},
     {"strip_prefix": "model."}, {}),  # Lightning
])
def test_read_state_finds_the_weights(tmp_path, wrap, kwargs, info):
    state = _state()
    torch.save(wrap(state), tmp_path / "c.ckpt")
    got, got_info = read_state(tmp_path / "c.ckpt", **kwargs)
    assert list(got) == list(state) and all(torch.equal(got[k], state[k]) for k in state)
    assert got_info == info


def test_read_state_safetensors(tmp_path):
    from safetensors.torch import save_file

    state = _state()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    got, info = read_state(tmp_path / "model.safetensors")
    assert all(torch.equal(got[k], state[k]) for k in state) and info == {}
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="is not a readable .safetensors file"):
        read_state(tmp_path / "bad.safetensors")


def test_read_state_names_what_it_found_instead(tmp_path):
    torch.save({"epoch": 1, "optimizer": {"lr": 0.1}, "ema": _state()}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="holds no state_dict under 'state_dict', .* its entries: ema, epoch, "
                                              "optimizer"):
        read_state(tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="has no entry 'weights'; its entries: ema, epoch, optimizer"):
        read_state(tmp_path / "c.pt", key="weights")
    with pytest.raises(CheckpointError, match="the entry 'epoch' is not a state_dict"):
        read_state(tmp_path / "c.pt", key="epoch")
    with pytest.raises(CheckpointError, match="no tensor name starts with 'model.'"):
        read_state(tmp_path / "c.pt", key="ema", strip_prefix="model.")


# lossvista import ---------------------------------------------------------------------------------

def test_import_then_run_shows_the_users_loss(project):
    proc = _import(project, "--loss", "mse")
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 checkpoints (epochs 0..10)" in proc.stderr and "lossvista run --out runs/mine" in proc.stderr
    run = project / "runs" / "mine"
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "imported" and info["unit"] == "epoch" and info["loss"]["name"] == "mse"
    assert info["search"] == [str(project.resolve())] and info["num_classes"] is None
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_000.pt", "epoch_005.pt", "epoch_010.pt"]
    assert not [p for p in project.glob("runs/.*")]  # no staging folder left behind

    proc = run_cli("run", "--out", "runs/mine", "--planes", "random", "--grid", "5", "--backend", "none",
                   cwd=project)
    assert proc.returncode == 0, proc.stderr
    from pipeline.run import Run
    from pipeline.vtkio import read_surface

    surface = read_surface(run / "surface_random.vts")
    assert surface.meta["loss_name"] == "mse" and surface.loss_label == "mse"
    assert surface.accuracy is None
    model, epoch = Run(run).build_model()  # the final weights
    assert epoch == 10
    import sys

    sys.path.insert(0, str(project))
    try:
        from mydata import splits  # the user's module, as their own loop would use it
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("mydata", None)
    (x, y), _ = splits()
    with torch.no_grad():
        want = F.mse_loss(model(x), y).item()
    assert surface.centre_value() == pytest.approx(want, rel=1e-5)
    traj = json.loads((run / "topology_random.json").read_text())
    assert traj  # the analysis ran on the MSE surface


def test_import_step_checkpoints_from_names_and_restart(project):
    for p in (project / "ckpt").iterdir():
        state = torch.load(p)["model_state_dict"]
        number = int(p.stem.removeprefix("epoch")) * 100
        torch.save(state, project / "ckpt" / f"iter-{number}.pth")
    proc = run_cli("import", "--checkpoints", "ckpt/iter-*.pth", "--model", "mymodels:Net", "--data", "mydata:splits",
                   "--loss", "l1", "--out", "runs/steps", cwd=project)
    assert proc.returncode == 0, proc.stderr
    info = json.loads((project / "runs/steps/run.json").read_text())
    assert info["unit"] == "step" and [c["epoch"] for c in info["checkpoints"]] == [0, 500, 1000]
    # checkpoints every 500 steps are the loop's spacing, not 998 lost files
    proc = run_cli("directions", "--run", "runs/steps", "--kind", "pca", cwd=project)
    assert proc.returncode == 0 and "no checkpoint of" not in proc.stderr, proc.stderr
    proc = run_cli("evolve", "runs/steps", "--epochs", "0,1000", "--x", "-0.5:0.5:5", "--no-pictures", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "step 1000: l1 " in proc.stderr and "epoch" not in proc.stderr, proc.stderr
    summary = json.loads((project / "runs/steps/evolve/evolution.json").read_text())
    assert summary["unit"] == "step" and summary["loss_name"] == "l1"
    assert_one_line_error(_import(project, out="runs/steps"), "already holds a run", "--restart")
    killed = project / "runs" / ".steps.import-0123abcd"  # an import killed outright left its staging folder
    (killed / "checkpoints").mkdir(parents=True)
    proc = _import(project, "--loss", "mse", "--restart", out="runs/steps")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((project / "runs/steps/run.json").read_text())["unit"] == "epoch"
    assert sorted(p.name for p in (project / "runs").iterdir()) == ["steps"]


@pytest.mark.parametrize("change, args, fragments", [
    (None, ["--checkpoints", "nothing/*.pt"], ["'nothing/*.pt' matches no file"]),
    (None, ["--model", "mymodels:Wider"], ["body.0.weight", "shape"]),
    (None, ["--model", "nomodule:Net"], ["cannot import module 'nomodule'"]),
    (None, ["--model", "mymodels:Nope"], ["mymodels", "Nope"]),
    (None, ["--data", "mydata:broken"], ["mydata:broken"]),
    (None, ["--data", "mydata:nan_targets", "--loss", "mse"], ["must be finite"]),
    (None, ["--loss", "mylosses:mean_only"], ["per-sample"]),
    (None, ["--loss", "hinge"], ["--loss must be one of"]),
    (None, ["--loss", "mse", "--loss-option", "delta"], ["KEY=VALUE"]),
    (None, ["--key", "weights"], ["has no entry 'weights'", "model_state_dict"]),
    ("same-epoch", [], ["are both epoch 5"]),
    ("garbage", [], ["epoch5.pt"]),
    ("negative-epoch", [], ["epoch -1", "0 or more"]),
    # the user's own code failing: where, in one line (the traceback with LOSSVISTA_DEBUG=1)
    (None, ["--model", "mymodels:Broken"], ["RuntimeError in your code", "mymodels.py:", "in forward",
                                            "boom in forward"]),
    (None, ["--data", "mydata:by_dict", "--forward", "mylosses:raises_key"], ["KeyError in your code",
                                                                             "mylosses.py:", "'inputs'"]),
    (None, ["--data", "mydata:by_dict", "--forward", "mylosses:outputs_only"], ["--forward hook must return an "
                                                                               "(outputs, targets) pair"]),
    (None, ["--model", "torch.nn:Identity"], ["does not fit the model Identity"]),  # torch itself, not re-imported
    (None, ["--data", "mydata:numpy_pair"], ["NumPy arrays", "torch.from_numpy"]),
    (None, ["--data", "mydata:nan_input_late"], ["NaN or inf in 1 of 90 samples", "sample 70"]),
    (None, ["--data", "mydata:all_ignored", "--loss", "cross_entropy"], ["ignored index -100"]),
    (None, ["--loss", "bce_with_logits"], ["targets in [0, 1]"]),
    (None, ["--metric", "mylosses:accuracy"], ["'accuracy' is taken"]),
    (None, ["--metric", "mylosses:squared", "--metric", "mylosses:squared"], ["both be stored as 'squared'"]),
])
def test_import_refusals_are_one_line_and_write_nothing(project, change, args, fragments):
    if change == "same-epoch":
        torch.save(torch.load(project / "ckpt" / "epoch5.pt"), project / "ckpt" / "epoch5b.pt")
    if change == "garbage":
        (project / "ckpt" / "epoch5.pt").write_bytes(b"not a checkpoint")
    if change == "negative-epoch":
        torch.save({**torch.load(project / "ckpt" / "epoch0.pt"), "epoch": -1}, project / "ckpt" / "epoch0.pt")
    base = {"--checkpoints": "ckpt/epoch*.pt", "--model": "mymodels:Net", "--data": "mydata:splits", "--loss": "mse"}
    given = [(k, v) for k, v in zip(args[::2], args[1::2])]
    argv = [x for k, v in base.items() if k not in dict(given) for x in (k, v)] + [x for kv in given for x in kv]
    proc = run_cli("import", *argv, "--out", "runs/x", cwd=project)
    assert_one_line_error(proc, *fragments)
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())


def test_user_frame_is_the_users_code_and_never_lossvistas(tmp_path, monkeypatch):
    """The CLI's one line for an exception from the user's code names their innermost frame; an
    exception from lossvista's or a library's frames alone is not blamed on them (it keeps its
    traceback)."""
    from pipeline.cli import user_frame
    from pipeline.datamodel import parse_axis

    def raised(call):
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - any exception: the frames below this test's
            return exc.with_traceback(exc.__traceback__.tb_next.tb_next)  # past the lambda too
        raise AssertionError("nothing raised")

    assert user_frame(raised(lambda: parse_axis("1:0:3", "x"))) is None
    assert user_frame(raised(lambda: torch.zeros(2) @ torch.zeros(3))) is None
    (tmp_path / "theirs.py").write_text("import torch\n\n\ndef forward(x):\n    return torch.zeros(2) @ x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from theirs import forward

    assert user_frame(raised(lambda: forward(torch.zeros(3)))) == f"{tmp_path / 'theirs.py'}:5 in forward"


def test_a_users_module_of_the_same_name_is_imported_afresh_and_torch_never(tmp_path, monkeypatch):
    """A notebook imported its own ``mymods`` from one folder; a run from another folder gets its
    own module of that name. An installed library (torch) named by a spec is never re-imported."""
    import sys

    from pipeline.usercode import load_callable

    for name, value in (("a", 1), ("b", 2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mymods.py").write_text(f"def which():\n    return {value}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.delitem(sys.modules, "mymods", raising=False)
    import mymods  # the notebook's own import

    assert mymods.which() == 1
    assert load_callable("mymods:which", search=[str(tmp_path / "b")])() == 2
    before = sys.modules["torch"]
    assert load_callable("torch.nn:Identity", search=[str(tmp_path / "b")]) is torch.nn.Identity
    assert sys.modules["torch"] is before
    sys.modules.pop("mymods", None)


@pytest.mark.parametrize("form", ["safetensors", "float16"])
def test_imported_checkpoints_are_stored_as_the_model_holds_them(project, form):
    """A .safetensors file keeps its keys sorted, a half-precision one its float16 tensors: the
    run stores them in the model's order and dtypes, so that every later stage finds its centre."""
    from safetensors.torch import save_file

    (project / "other").mkdir()
    for p in (project / "ckpt").iterdir():
        state = torch.load(p)["model_state_dict"]
        if form == "safetensors":
            save_file(state, project / "other" / f"{p.stem}.safetensors")
        else:
            torch.save({k: v.half() for k, v in state.items()}, project / "other" / f"{p.stem}.pt")
    proc = run_cli("import", "--checkpoints", "other/*", "--model", "mymodels:Net", "--data", "mydata:splits",
                   "--loss", "mse", "--out", "runs/f", cwd=project)
    assert proc.returncode == 0, proc.stderr
    stored = torch.load(project / "runs/f/checkpoints/epoch_010.pt")
    assert list(stored) == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]
    assert {v.dtype for v in stored.values()} == {torch.float32}
    proc = run_cli("run", "--out", "runs/f", "--planes", "random", "--grid", "3", "--backend", "none", "--no-page",
                   cwd=project)
    assert proc.returncode == 0, proc.stderr


def test_cross_entropy_import_records_the_classes(tmp_path, monkeypatch):
    """A classifier's run, imported from a bundled dataset name: the class count comes from its outputs."""
    from pipeline.importer import ImportConfig, import_run

    monkeypatch.chdir(tmp_path)
    from tests.user_models import tiny_mlp

    torch.save({"epoch": 0, "state_dict": tiny_mlp().state_dict()}, tmp_path / "e0.pt")
    info = import_run(tmp_path / "run", ImportConfig(checkpoints=(str(tmp_path / "e0.pt"),),
                                                     model="tests.user_models:tiny_mlp", data="digits",
                                                     search=(str(Path(__file__).parents[1]),)))
    assert info["num_classes"] == 10 and info["loss"]["name"] == "cross_entropy"


# the Recorder ------------------------------------------------------------------------------------

def test_recorder_writes_a_run_the_pipeline_reads(project, monkeypatch):
    from pipeline import Recorder
    from pipeline.run import Run

    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    from mymodels import Net

    model = Net()
    rec = Recorder("runs/rec", model, data="mydata:splits", loss="huber", unit="step")
    for step in (0, 50):
        rec.save(step)
        with torch.no_grad():
            model.body[0].weight.add_(0.1)
    run = Run("runs/rec")
    assert run.unit == "step" and run.loss().label == "huber" and run.dir.epochs() == [0, 50]
    assert torch.equal(torch.load("runs/rec/checkpoints/epoch_050.pt")["body.0.weight"] + 0.1,
                       model.body[0].weight)
    with pytest.raises(ParameterError, match="must be 'module:function'"):
        Recorder("runs/r2", model, data=(torch.zeros(2, 4), torch.zeros(2, 1)))
    with pytest.raises(ParameterError, match="does not fit the one being trained"):
        Recorder("runs/r3", model, data="mydata:splits", model_spec="mymodels:Wider")
    with pytest.raises(ParameterError, match="integer >= 0"):
        rec.save(-1)


def test_recorder_replaces_an_earlier_training_and_keeps_what_a_resumed_one_continues(project, monkeypatch):
    from pipeline import Recorder

    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    from mymodels import Net

    def train(model, numbers):
        rec = Recorder("runs/again", model, data="mydata:splits", loss="mse")
        for n in numbers:
            with torch.no_grad():
                model.body[0].weight.add_(0.1)
            rec.save(n)

    first = Net()
    train(first, range(5))
    kept = torch.load("runs/again/checkpoints/epoch_002.pt")
    train(Net(), (3, 4, 5))  # resumed from epoch 2: 0..2 are still this training's
    epochs = sorted(p.name for p in Path("runs/again/checkpoints").iterdir())
    assert epochs == [f"epoch_00{n}.pt" for n in range(6)]
    assert torch.equal(torch.load("runs/again/checkpoints/epoch_002.pt")["body.0.weight"], kept["body.0.weight"])
    train(Net(), range(2))  # trained again from the start, shorter: the earlier epochs 2..5 are gone
    assert sorted(p.name for p in Path("runs/again/checkpoints").iterdir()) == ["epoch_000.pt", "epoch_001.pt"]
    assert [c["epoch"] for c in json.loads(Path("runs/again/run.json").read_text())["checkpoints"]] == [0, 1]


@pytest.mark.parametrize("wrap", ["DataParallel", "compile"])
def test_recorder_records_the_model_inside_a_wrapper(project, monkeypatch, wrap):
    from pipeline import Recorder

    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    from mymodels import Net

    inner = Net()
    model = nn.DataParallel(inner) if wrap == "DataParallel" else torch.compile(inner)
    rec = Recorder("runs/wrapped", model, data="mydata:splits", loss="mse")
    rec.save(0)
    saved = torch.load("runs/wrapped/checkpoints/epoch_000.pt")
    assert list(saved) == list(inner.state_dict())  # no 'module.' or '_orig_mod.' prefix
    assert json.loads(Path("runs/wrapped/run.json").read_text())["config"]["model"] == "mymodels:Net"


def test_recorder_refuses_a_model_defined_in_the_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent('''
        from torch import nn
        from pipeline import Recorder

        class Net(nn.Linear):
            def __init__(self):
                super().__init__(2, 1)

        Recorder("runs/r", Net(), data="mydata:splits")
    '''))
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and "defined in the script being run" in proc.stderr


# one call, a preset, the directions on the user's files -------------------------------------------

def test_landscape_is_import_then_run_in_one_call(project, monkeypatch):
    from pipeline import landscape
    from pipeline.workflow import RunOptions

    monkeypatch.chdir(project)
    result = landscape("runs/one", model="mymodels:Net", checkpoints="ckpt/epoch*.pt", data="mydata:splits",
                       loss="l1", grid=5, options=RunOptions(planes=("random", "pca"), backend="none", pca_points=5,
                                                             page=False))
    run = project / "runs" / "one"
    assert result.summary["imported"] and json.loads((run / "run.json").read_text())["loss"]["name"] == "l1"
    for name in ("surface_random.vts", "surface_pca.vts", "trajectory_pca.vtp", "topology_pca.json"):
        assert (run / name).is_file(), name
    said: list[str] = []
    again = landscape("runs/one", model="mymodels:Net", checkpoints="ckpt/epoch*.pt", data="mydata:splits",
                      loss="l1", grid=5, options=RunOptions(planes=("random",), backend="none", page=False),
                      notice=said.append)
    assert again.summary["imported"]  # completed in place, not imported twice
    assert not any("another training" in n for n in said), said
    centre = vtkio.read_surface(run / "surface_random.vts").centre_value()

    # trained again: the same file names, other weights; then another loss asked for
    state = torch.load(project / "ckpt" / "epoch10.pt")
    state["model_state_dict"] = {k: v * 0.5 for k, v in state["model_state_dict"].items()}
    torch.save(state, project / "ckpt" / "epoch10.pt")
    landscape("runs/one", model="mymodels:Net", checkpoints="ckpt/epoch*.pt", data="mydata:splits", loss="l1",
              grid=5, options=RunOptions(planes=("random",), backend="none", page=False), notice=said.append)
    assert any("epoch10.pt has changed" in n for n in said), said
    assert vtkio.read_surface(run / "surface_random.vts").centre_value() != pytest.approx(centre)
    said.clear()
    landscape("runs/one", model="mymodels:Net", checkpoints="ckpt/epoch*.pt", data="mydata:splits", loss="mse",
              grid=5, options=RunOptions(planes=("random",), backend="none", page=False), notice=said.append)
    assert any("the loss changed" in n for n in said), said
    assert vtkio.read_surface(run / "surface_random.vts").loss_label == "mse"
    said.clear()
    import shutil

    shutil.rmtree(project / "ckpt")  # the originals cleaned up: the run keeps its own copies
    landscape("runs/one", model="mymodels:Net", checkpoints="ckpt/epoch*.pt", data="mydata:splits", loss="mse",
              grid=5, options=RunOptions(planes=("random",), backend="none", page=False), notice=said.append)
    assert not any("another training" in n for n in said), said


def test_a_preset_imports_relative_to_its_folder(project, tmp_path):
    (project / "mine.toml").write_text('name = "mine"\n[import]\ncheckpoints = "ckpt/epoch*.pt"\n'
                                       'model = "mymodels:Net"\ndata = "mydata:splits"\n'
                                       'loss = { name = "huber", options = { delta = 0.5 } }\n'
                                       '[random_grid]\nx = "-1:1:3"\ny = "-1:1:3"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli("run", "--preset", str(project / "mine.toml"), "--out", "runs/p", "--backend", "none",
                   "--no-page", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    for plane in ("random", "pca"):  # the PCA plane takes the preset's points per axis too
        assert vtkio.read_surface(elsewhere / f"runs/p/surface_{plane}.vts").loss.shape == (3, 3)
    info = json.loads((elsewhere / "runs/p/run.json").read_text())
    assert info["loss"] == {"name": "huber", "options": {"delta": 0.5}, "metrics": [], "search": [str(project)]}
    (project / "bad.toml").write_text('[import]\nmodel = "mymodels:Net"\ndata = "mydata:splits"\n')
    assert_one_line_error(run_cli("run", "--preset", str(project / "bad.toml"), "--out", "runs/b", cwd=elsewhere),
                          "[import] needs checkpoints")


def test_directions_on_the_users_checkpoint_files(project):
    from pipeline.directions import pca_directions, random_directions

    files = sorted((project / "ckpt").glob("epoch*.pt"), key=lambda p: int(p.stem[5:]))
    d = random_directions(files[-1], seed=0)
    state = torch.load(files[-1])["model_state_dict"]
    assert set(d.x) == {k for k in state if k.endswith("weight")} | {k for k in state if k.endswith("bias")}
    p = pca_directions(files)
    assert p.meta["explained_variance"][0] > 0.5
    from safetensors.torch import save_file

    save_file(state, project / "final.safetensors")
    assert set(random_directions(project / "final.safetensors", seed=0).x) == set(d.x)


def test_streamed_data_shards_merges_and_caps_like_data_in_memory(project):
    """The surface of an imported run whose data is streamed: computed in two shards and merged,
    equal to the in-memory surface; a cap bounds the same points."""
    from pipeline.vtkio import read_surface

    def surface(data, out, *extra):
        assert run_cli("import", "--checkpoints", "ckpt/epoch*.pt", "--model", "mymodels:Net", "--data", data,
                       "--loss", "mse", "--out", out, cwd=project).returncode == 0
        assert run_cli("directions", "--run", out, "--kind", "random", cwd=project).returncode == 0
        args = ("surface", "--run", out, "--directions", f"{out}/directions/random.pt", "--x", "-3:3:7",
                "--y", "-3:3:7", "--chunk-size", "8", *extra)
        if data.endswith("streamed") and "--nproc-per-node" not in extra:
            for shard in ("0/2", "1/2"):
                proc = run_cli(*args, "--shard", shard, cwd=project)
                assert proc.returncode == 0, proc.stderr
            args = (*args, "--merge")
        proc = run_cli(*args, cwd=project)
        assert proc.returncode == 0, proc.stderr
        return read_surface(project / out / "surface_random.vts")

    memory, streamed = surface("mydata:splits", "runs/m"), surface("mydata:streamed", "runs/s")
    np.testing.assert_allclose(streamed.loss, memory.loss, rtol=1e-6)
    two = surface("mydata:streamed", "runs/t", "--nproc-per-node", "2", "--device", "cpu")
    np.testing.assert_array_equal(two.loss, streamed.loss)  # two processes (torch's launcher, gloo): bitwise
    assert streamed.meta["samples"] == memory.meta["samples"] == 90
    ordered = np.sort(memory.loss.ravel())
    cap = float(ordered[24] + ordered[25]) / 2  # between two values: no point sits at the cap
    capped = surface("mydata:streamed", "runs/c", "--cap", str(cap))
    above = memory.loss > cap
    assert np.array_equal(capped.bounded.astype(bool), above)
    np.testing.assert_allclose(capped.loss[~above], memory.loss[~above], rtol=1e-6)
    assert np.all(capped.loss[above] > cap)


@pytest.mark.parametrize("data", ["mydata:splits", "mydata:streamed"])
def test_curvature_of_the_users_model_data_and_loss(project, data):
    """lossvista curvature on an imported run (the user's model, data form and loss function):
    lambda_max and lambda_min equal those of the dense Hessian of that loss, written out here."""
    from torch.func import functional_call

    from pipeline.run import Run

    assert run_cli("import", "--checkpoints", "ckpt/epoch*.pt", "--model", "mymodels:Net", "--data", data,
                   "--loss", "mylosses:squared", "--out", "runs/mine", cwd=project).returncode == 0
    proc = run_cli("curvature", "runs/mine", "--epochs", "10", "--max-samples", "0", "--ignore", "none", "--tol",
                   "1e-6", "--trace-samples", "0", "--density-vectors", "0", "--no-pictures", cwd=project)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((project / "runs" / "mine" / "curvature.json").read_text())
    assert record["samples"] == 90 and record["parameters"] == 49
    row = record["checkpoints"][0]
    model, _ = Run(project / "runs" / "mine").build_model(10)
    model = model.double()
    g = torch.Generator().manual_seed(0)  # mydata.splits, as the user's loop has it
    x = torch.randn(120, 4, generator=g, dtype=torch.float32)
    x, y = x[:90].double(), (x[:, :1] - 0.5 * x[:, 1:2])[:90].double()
    params = dict(model.named_parameters())

    def loss(flat):
        pieces = dict(zip(params, torch.split(flat, [p.numel() for p in params.values()])))
        out = functional_call(model, {k: v.view_as(params[k]) for k, v in pieces.items()}, (x,))
        return ((out - y) ** 2).mean()

    H = torch.autograd.functional.hessian(loss, torch.cat([p.detach().reshape(-1) for p in params.values()]))
    ev = np.linalg.eigvalsh(H.numpy())
    assert row["lambda_max"] == pytest.approx(ev[-1], rel=1e-4)
    assert row["lambda_min"] == pytest.approx(ev[0], rel=1e-3, abs=1e-5 * ev[-1])
