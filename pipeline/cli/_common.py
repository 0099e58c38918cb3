"""Options shared by several subcommands, their conversion to typed configs, signals, and path display."""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..config import RunConfig, load_preset, preset_names
from ..errors import ParameterError, param


def add_train_options(p: argparse.ArgumentParser, *, preset_default: str | None = "digits") -> None:
    g = p.add_argument_group("training (override the preset)")
    g.add_argument("--preset", default=preset_default, metavar="NAME",
                   help=f"bundled preset ({', '.join(preset_names())}) or a .toml file (default: %(default)s)")
    g.add_argument("--model", help="registry name (see 'lossvista train --list-models') or package.module:factory")
    g.add_argument("--dataset", help="digits | fashion-mnist | cifar10 | synthetic[:CxHxW[:N[:K]]]")
    g.add_argument("--data-root", metavar="DIR", help="where the dataset's files are (fashion-mnist, cifar10)")
    g.add_argument("--download", action="store_true", default=None,
                   help="cifar10 only: let torchvision download it (needs internet)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--optimizer", choices=["sgd", "adam"])
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--momentum", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--seed", type=int, help="seed of the initial weights and the data order")
    g.add_argument("--max-train-samples", type=int, metavar="N", help="train on a fixed subset of N samples")
    g.add_argument("--device", help="training device: cpu (default) or cuda")


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    """The preset with the command line's overrides applied (validated by the dataclasses)."""
    cfg = load_preset(args.preset or "digits")
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(cfg.train)
                 if getattr(args, f.name, None) is not None}
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **overrides))


def add_compile_option(p: argparse.ArgumentParser | Any, default: str | None = "auto") -> None:
    """``--compile auto|on|off``, for every command that evaluates (the engine's ``EvalConfig.compile``,
    which validates it); ``default`` None: the preset's choice."""
    shown = default or "the preset's, else auto"
    p.add_argument("--compile", choices=["auto", "on", "off"], default=default,
                   help="torch.compile the forward and loss into one graph: on, off, or auto, which compiles when "
                   f"the expected saving over the whole job exceeds the compile time (default: {shown}); compiled "
                   f"code is cached in {compile_cache_dir()} for later runs")


def compile_cache_dir() -> Path:
    """Where torch's inductor keeps compiled code for the command line: ``$TORCHINDUCTOR_CACHE_DIR``
    when set, else ``$XDG_CACHE_HOME/lossvista/inductor`` (``~/.cache/lossvista/inductor``), so
    that a rerun or a resume does not compile again (torch's own default is under /tmp)."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lossvista" / "inductor"


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (a scheduler's preemption, torchrun stopping the survivors of a dead rank) and SIGINT
    stop the run through an exception, so the library reports what it keeps and exits cleanly."""
    from ..surface import StoppedBySignal

    def handler(signum: int, frame: Any) -> None:
        raise StoppedBySignal(f"stopped by {signal.Signals(signum).name}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def shown_path(path) -> str:
    """A path as the user would type it: relative to the working directory when it is inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


EPOCHS_HELP = "numbers and ranges, by commas or spaces: 0,5,10..20 or 0 5 10"


def add_epochs_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--epochs``, the same syntax on every command that takes checkpoints (:func:`parse_epochs`)."""
    p.add_argument("--epochs", nargs="+", metavar="E", help=f"{what}; {EPOCHS_HELP}")


def parse_epochs(values: list[str] | str | None) -> tuple[int, ...] | None:
    """``["0,5", "10..20"]`` or ``"0,5,10..20"`` -> ``(0, 5, 10, 11, ..., 20)`` (sorted, without
    repeats); None stays None."""
    if values is None:
        return None
    text = ",".join([values] if isinstance(values, str) else values)
    out: set[int] = set()
    for piece in text.split(","):
        piece = piece.strip()
        m = re.fullmatch(r"(\d+)\s*(?:\.\.|-)\s*(\d+)", piece)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            out.update(range(min(a, b), max(a, b) + 1))
        elif re.fullmatch(r"\d+", piece):
            out.add(int(piece))
        else:
            raise ParameterError(f"{param('epochs')} must be checkpoint numbers and ranges like '0,5,10..20'; "
                                 f"got {' '.join([values] if isinstance(values, str) else values)!r}")
    return tuple(sorted(out))
