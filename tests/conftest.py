"""Shared fixtures: a trained digits run (module-scoped, ~2 s) and helpers for CLI tests."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A digits-cnn run trained for 3 epochs (checkpoints epoch_000..003 and run.json)."""
    from pipeline.config import TrainConfig
    from pipeline.train import train

    out = tmp_path_factory.mktemp("runs") / "digits"
    train(TrainConfig(epochs=3), out)
    return out


class Result:
    """What a command run in this process returned and printed (the fields of a CompletedProcess)."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def main_cli(capsys):
    """``lossvista ARGS`` in this process (no import cost), with one torch thread as in the
    subprocesses: ``main_cli("surface", ...) -> Result``."""
    import torch

    from pipeline.cli import main

    def call(*args: str) -> Result:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            code = main(list(args))
        finally:
            torch.set_num_threads(threads)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call


def as_cli(exc: BaseException) -> str:
    """``exc``'s message as the CLI shows it: every parameter the library names (``shard``,
    ``from_epoch``) spelled as a flag (``--shard``, ``--from-epoch``)."""
    from pipeline.errors import LossvistaError, render

    if not isinstance(exc, LossvistaError):
        return str(exc)
    marks = __import__("re").findall("\x1f(\\w+)\x1f", exc.template)
    return render(exc.template, {m: "--" + m.replace("_", "-") for m in marks})


HANG_GUARD = 1800  # seconds: a test that waits on another process fails past this (a hang, not a speed)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = HANG_GUARD
            ) -> subprocess.CompletedProcess:
    """Run ``python -m pipeline ARGS`` in a subprocess (a real exit status and real stderr)."""
    full_env = {**os.environ, "TQDM_DISABLE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Non-zero exit, exactly one line on stderr starting 'lossvista', no traceback, containing fragments."""
    assert proc.returncode != 0, proc
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lossvista"), lines[0]
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f.lower() in lines[0].lower(), (f, lines[0])


def require(missing: list[str], reason: str, variable: str) -> None:
    """Skip the test when something it needs is ``missing`` (``reason`` says what and how to get
    it), or fail it when the environment variable ``variable`` is set (CI makes them mandatory)."""
    if missing:
        if os.environ.get(variable, "") not in ("", "0"):
            pytest.fail(f"{variable}=1 but {reason}", pytrace=False)
        pytest.skip(reason)


def hold_after(n: int, where: str = "") -> dict[str, str]:
    """The environment that makes an evaluating process wait after ``n`` chunks of a surface (one
    whose work directory's path holds ``where``) until a signal stops it
    (``pipeline.surface.compute.HOLD_ENV``): a test interrupts it there, at the same point on a slow
    machine and a fast one."""
    from pipeline.surface.compute import HOLD_ENV

    return {HOLD_ENV: f"{n}:{where}" if where else str(n)}


def wait_for_chunks(parts: Path, n: int, proc: subprocess.Popen) -> None:
    """Until the work directory ``parts`` holds ``n`` finished chunks, while ``proc`` is still
    running (one that ends first, a crash, fails the test; started with :func:`hold_after` it
    cannot finish first; one that hangs is left to ``HANG_GUARD``)."""
    from pipeline.surface import ChunkStore

    while len(ChunkStore(parts).chunk_ids()) < n:
        assert proc.poll() is None, "finished before it could be interrupted"
        time.sleep(0.01)
