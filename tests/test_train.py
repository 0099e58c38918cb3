import json
import os

import pytest
import torch

from pipeline.run import Run
from pipeline.checkpoints import load_checkpoint
from pipeline.rundir import RunDir
from pipeline.config import TrainConfig, load_preset
from pipeline.errors import LossvistaError
from pipeline.train import train

from .conftest import as_cli, assert_one_line_error, run_cli


class Interrupt(Exception):
    pass


def _stop_at(epoch):
    def cb(e, metrics):
        if e == epoch:
            raise Interrupt
    return cb


def test_digits_preset_reaches_90_percent(tmp_path):
    cfg = load_preset("digits").train
    info = train(cfg, tmp_path / "d")
    run = RunDir(tmp_path / "d")
    assert run.epochs() == list(range(cfg.epochs + 1))
    assert info["complete"] and info["history"][-1]["test_accuracy"] >= 0.90
    on_disk = json.loads(run.run_json.read_text())
    assert [h["epoch"] for h in on_disk["history"]] == list(range(cfg.epochs + 1))
    # the last checkpoint is exactly the model whose metrics were recorded
    model, epoch = Run(run).build_model()
    from pipeline.data import load_dataset
    from pipeline.train import eval_loss_accuracy
    loss, acc = eval_loss_accuracy(model, load_dataset("digits").test)
    assert epoch == cfg.epochs and acc == pytest.approx(on_disk["history"][-1]["test_accuracy"])
    assert loss == pytest.approx(on_disk["history"][-1]["test_loss"], rel=1e-6)


@pytest.mark.parametrize("model", ["digits-cnn", "tests.user_models:tiny_mlp"])
def test_resume_after_interruption_gives_same_weights(tmp_path, model):
    cfg = TrainConfig(model=model, epochs=4, lr=0.05)
    train(cfg, tmp_path / "a")
    with pytest.raises(Interrupt):
        train(cfg, tmp_path / "b", on_epoch_end=_stop_at(2))
    assert RunDir(tmp_path / "b").epochs() == [0, 1, 2]
    info = train(cfg, tmp_path / "b")
    assert info["complete"] and [h["epoch"] for h in info["history"]] == [0, 1, 2, 3, 4]
    for e in range(5):
        a = load_checkpoint(RunDir(tmp_path / "a").checkpoint(e))
        b = load_checkpoint(RunDir(tmp_path / "b").checkpoint(e))
        assert all(torch.equal(a[k], b[k]) for k in a), e


def test_crash_between_weights_and_optimizer_state(tmp_path):
    """epoch_3.pt written but resume.pt still at epoch 2: epoch 3 is retrained, same result."""
    cfg = TrainConfig(epochs=3)
    train(cfg, tmp_path / "a")
    with pytest.raises(Interrupt):
        train(cfg, tmp_path / "b", on_epoch_end=_stop_at(2))
    run_b = RunDir(tmp_path / "b")
    # simulate: the process died after writing epoch_003.pt but before resume.pt
    torch.save({k: v + 1 for k, v in load_checkpoint(run_b.checkpoint(2)).items()}, run_b.checkpoint(3))
    train(cfg, tmp_path / "b")
    a, b = load_checkpoint(RunDir(tmp_path / "a").checkpoint(3)), load_checkpoint(run_b.checkpoint(3))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_more_epochs_continue_and_fewer_are_refused(tmp_path):
    train(TrainConfig(epochs=2), tmp_path / "r")
    info = train(TrainConfig(epochs=3), tmp_path / "r")
    assert RunDir(tmp_path / "r").epochs() == [0, 1, 2, 3] and info["history"][-1]["epoch"] == 3
    with pytest.raises(LossvistaError, match="already holds 3 trained epochs"):
        train(TrainConfig(epochs=1), tmp_path / "r")


def test_a_folder_of_the_users_own_files_is_refused(tmp_path):
    mine = tmp_path / "project"
    (mine / "checkpoints").mkdir(parents=True)  # their training's checkpoints, lossvista's names by chance
    (mine / "checkpoints" / "epoch_000.pt").write_bytes(b"precious")
    (mine / "notes.txt").write_text("notes")
    with pytest.raises(LossvistaError, match="is not a lossvista run directory"):
        train(TrainConfig(epochs=1), mine)
    assert (mine / "checkpoints" / "epoch_000.pt").read_bytes() == b"precious"
    # what a training stopped before its first run.json leaves is taken up again
    started = tmp_path / "started"
    (started / "checkpoints").mkdir(parents=True)
    (started / "checkpoints" / "epoch_000.pt").write_bytes(b"half a start")
    train(TrainConfig(epochs=1), started)
    assert RunDir(started).epochs() == [0, 1]


def test_restart_through_a_symlinked_checkpoints_folder_leaves_no_old_epoch(tmp_path):
    run = RunDir(tmp_path / "run")
    store = tmp_path / "store"
    train(TrainConfig(epochs=3), run.root)
    run.checkpoints_dir.rename(store)
    run.checkpoints_dir.symlink_to(store)
    train(TrainConfig(epochs=1, seed=1), run.root, restart=True)
    assert run.epochs() == [0, 1] and sorted(p.name for p in store.glob("epoch_*.pt")) == ["epoch_000.pt",
                                                                                           "epoch_001.pt"]


def test_other_config_refused_unless_restart(tmp_path):
    train(TrainConfig(epochs=1), tmp_path / "r")
    with pytest.raises(LossvistaError, match="another configuration.*lr: 0.05 vs 0.01.*restart") as e:
        train(TrainConfig(epochs=1, lr=0.01), tmp_path / "r")
    assert "pass --restart to start over or choose another --out" in as_cli(e.value)
    info = train(TrainConfig(epochs=1, lr=0.01), tmp_path / "r", restart=True)
    assert info["config"]["lr"] == 0.01


def test_adam_and_synthetic(tmp_path):
    info = train(TrainConfig(model="resnet20", dataset="synthetic:3x32x32:64:4", optimizer="adam", lr=1e-3,
                             epochs=1, batch_size=16), tmp_path / "r")
    assert info["num_classes"] == 4 and info["input_shape"] == [3, 32, 32]


# ---- the command line ------------------------------------------------------------------------

def test_cli_train_writes_run(tmp_path):
    proc = run_cli("train", "--epochs", "2", "--out", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "d")
    assert RunDir(tmp_path / "d").epochs() == [0, 1, 2]


@pytest.mark.parametrize("args, fragments", [
    (["--model", "nosuchnet"], ["model must be one of"]),
    (["--dataset", "mnist"], ["dataset must be one of"]),
    (["--dataset", "fashion-mnist", "--model", "lenet", "--data-root", "/nonexistent"], ["not found under /nonexistent"]),
    (["--dataset", "cifar10", "--model", "resnet20", "--data-root", "/nonexistent"], ["cifar-10 not found"]),
    (["--model", "lenet"], ["does not accept 'digits' inputs"]),
    (["--lr", "-1"], ["lr must be a positive number"]),
    (["--preset", "nosuch"], ["preset must be one of"]),
    (["--preset", "{tmp}/notrain.toml"], ["[train] must be a table", "got 5"]),
    (["--preset", "{tmp}/imports.toml"], ["imports your own training", "lossvista run --preset"]),
    (["--max-train-samples", "0"], ["--max-train-samples must be an integer >= 1; got 0"]),
    (["--preset", "{tmp}/nosuch.toml"], ["nosuch.toml", "no such file"]),
    (["--preset", "{tmp}/packed.toml"], ["packed.toml", "is not a TOML text file"]),
    (["--preset", "{tmp}/even.toml"], ["[random_grid] must hold the point (0, 0)", "x = '-1:1:4'"]),
    (["--preset", "{tmp}/bogus.toml"], ["unknown preset keys ['bogus']", "'import'"]),
])
def test_cli_bad_input_one_line_nothing_written(tmp_path, args, fragments):
    import gzip

    (tmp_path / "packed.toml").write_bytes(gzip.compress(b"[train]\nepochs = 1\n"))
    (tmp_path / "even.toml").write_text('[random_grid]\nx = "-1:1:4"\ny = "-1:1:5"\n')
    (tmp_path / "bogus.toml").write_text("bogus = 1\n")
    (tmp_path / "notrain.toml").write_text("train = 5\n")
    (tmp_path / "imports.toml").write_text('[import]\ncheckpoints = "ckpt/*.pt"\nmodel = "mymodels:Net"\n'
                                           'data = "mydata:splits"\n')
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "r"
    proc = run_cli("train", *args, "--epochs", "1", "--out", str(out))
    assert_one_line_error(proc, *fragments)
    assert not out.exists()


def _interrupted_run(tmp_path):
    train(TrainConfig(epochs=2), tmp_path / "r")
    return RunDir(tmp_path / "r")


def test_cli_truncated_checkpoint(tmp_path):
    run = _interrupted_run(tmp_path)
    data = run.checkpoint(2).read_bytes()
    run.checkpoint(2).write_bytes(data[: len(data) // 2])
    before = run.run_json.read_bytes()
    proc = run_cli("train", "--epochs", "3", "--out", str(run.root))
    assert_one_line_error(proc, "epoch_002.pt", "truncated or corrupted")
    assert run.run_json.read_bytes() == before and run.epochs() == [0, 1, 2]


def test_cli_checkpoint_keys_do_not_fit(tmp_path):
    run = _interrupted_run(tmp_path)
    state = load_checkpoint(run.checkpoint(2))
    state["extra.weight"] = state.pop("fc2.weight")
    torch.save(state, run.checkpoint(2))
    proc = run_cli("train", "--epochs", "3", "--out", str(run.root))
    assert_one_line_error(proc, "does not fit the model", "missing", "fc2.weight")


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cli_pickle_that_runs_code_is_refused(tmp_path):
    run = _interrupted_run(tmp_path)
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker
    torch.save({"epoch": 2, "optimizer": evil}, run.resume_state)
    proc = run_cli("train", "--epochs", "3", "--out", str(run.root))
    assert_one_line_error(proc, "would run code on load")
    assert not marker.exists()
    assert run.epochs() == [0, 1, 2]


def test_cli_help_lists_subcommands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for cmd in ["run", "train", "directions", "surface", "trajectory", "analyze", "render", "export", "compare"]:
        assert cmd in proc.stdout
    for cmd in ["run", "train", "directions", "surface", "trajectory", "analyze", "render", "export", "compare"]:
        assert run_cli(cmd, "--help").returncode == 0, cmd
