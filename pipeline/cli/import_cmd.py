"""`lossvista import`: record the user's own training (checkpoints, model, data, loss) as a run."""
from __future__ import annotations

import argparse
import json
import sys

from ._common import stop_on_signals

EPILOG = """\
examples:
  lossvista import --checkpoints 'ckpt/epoch*.pt' --model mymodels:Net --data mydata:splits --loss mse \\
      --out runs/mine
  lossvista import --checkpoints 'lightning_logs/*/checkpoints/*.ckpt' --strip-prefix model. \\
      --model mymodels:make_net --data mydata:loaders --out runs/lit
  lossvista import --checkpoints ckpt/*.pt --model mymodels:Classifier --data mydata:splits \\
      --loss cross_entropy --loss-option label_smoothing=0.1 --out runs/smooth

Then 'lossvista run --out RUN' computes the directions, trajectories, surfaces, analysis and
pictures. The user's modules are imported from the current directory (recorded in the run),
so no PYTHONPATH is needed. --model names a class or function that builds the model without
arguments; --data a function returning (train, test), {'train': ..., 'test': ...} or the train
split, each as tensors, a Dataset, a DataLoader (not shuffling) or a re-iterable of batches."""


def register(sub) -> None:
    p = sub.add_parser(
        "import", help="record your own training (checkpoints, model, data, loss) as a run",
        description="Read the checkpoints your training loop saved (a state_dict, or a dict holding one; "
        ".pt, .pth, .ckpt, .safetensors), order them by their epoch/step entry or the number in their names, "
        "check them against your model, and write a run directory that every other command works on.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", required=True, nargs="+", metavar="GLOB",
                   help="checkpoint files or glob patterns (quote them), e.g. 'ckpt/epoch*.pt'")
    p.add_argument("--model", required=True, metavar="MODULE:FACTORY",
                   help="a class or function building the model without arguments, e.g. mymodels:Net")
    p.add_argument("--data", required=True, metavar="MODULE:FUNCTION|NAME",
                   help="a function returning the splits, e.g. mydata:splits (or a bundled dataset: digits, ...)")
    p.add_argument("--loss", default="cross_entropy", metavar="NAME|MODULE:FUNCTION",
                   help="cross_entropy (default), nll, mse, l1, huber, bce_with_logits, or a function "
                   "(outputs, targets) -> per-sample or per-element losses")
    p.add_argument("--loss-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the named loss, e.g. label_smoothing=0.1, ignore_index=-100, delta=1.0")
    p.add_argument("--metric", action="append", default=[], metavar="MODULE:FUNCTION",
                   help="a metric (outputs, targets) -> per-sample or per-element values (repeatable)")
    p.add_argument("--forward", metavar="MODULE:FUNCTION",
                   help="a forward hook (model, batch) -> (outputs, targets), for batches that are not "
                   "(inputs, targets) pairs (e.g. dicts of keyword arguments)")
    p.add_argument("--key", metavar="NAME", help="the checkpoint entry holding the state_dict (default: found)")
    p.add_argument("--strip-prefix", metavar="PREFIX", help="keep the tensors named PREFIX..., without it "
                   "(Lightning: model.); DataParallel's module. is always removed")
    p.add_argument("--out", required=True, metavar="RUN", help="the run directory to write")
    p.add_argument("--restart", action="store_true", help="replace a run already in RUN")
    p.set_defaults(func=_import)


def _options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--loss-option must look like KEY=VALUE (e.g. label_smoothing=0.1); got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"--loss-option {key}: the value must be a number; got {value!r}") from None
    return options


def _import(args: argparse.Namespace) -> int:
    from ..importer import ImportConfig, import_run
    from ..objective import LossSpec

    loss = LossSpec(args.loss, _options(args.loss_option), tuple(args.metric))
    with stop_on_signals():  # SIGTERM too: the staging folder is removed, one line says so
        info = import_run(args.out, ImportConfig(checkpoints=tuple(args.checkpoints), model=args.model,
                                                 data=args.data, loss=loss, forward=args.forward, key=args.key,
                                                 strip_prefix=args.strip_prefix), restart=args.restart)
    numbers = [c["epoch"] for c in info["checkpoints"]]
    print(f"imported {len(numbers)} checkpoint{'s' if len(numbers) != 1 else ''} ({info['unit']}s {numbers[0]}.."
          f"{numbers[-1]}) of {args.model}, loss {loss.label} -> {args.out}; next: lossvista run --out {args.out}",
          file=sys.stderr)
    print(args.out)
    return 0
