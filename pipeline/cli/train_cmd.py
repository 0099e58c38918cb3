"""`lossvista train`: train a model and write a run directory with a checkpoint per epoch."""
from __future__ import annotations

import argparse
import sys

from ._common import add_train_options, run_config_from_args, stop_on_signals


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model, writing a checkpoint per epoch",
        description="Train a model and write RUN/checkpoints/epoch_000.pt (initial weights) ... epoch_N.pt "
        "and RUN/run.json. Rerunning an interrupted training resumes from the last complete checkpoint; "
        "asking for more epochs continues a finished one.")
    add_train_options(p)
    p.add_argument("--out", metavar="RUN", help="run directory (default: runs/<preset>)")
    p.add_argument("--restart", action="store_true", help="discard an existing training in RUN and start over")
    p.add_argument("--list-models", action="store_true", help="list the registered models and exit")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    if args.list_models:
        from ..models import MODELS

        for name, spec in MODELS.items():
            print(f"{name:18s} {'x'.join(map(str, spec.input_shape)):8s} {spec.description}")
        return 0
    from ..train import train

    cfg = run_config_from_args(args)
    if cfg.source is not None:  # nothing of lossvista's to train: the preset records the user's training
        raise ValueError(f"the preset {args.preset} imports your own training ([import]), which lossvista does not "
                         f"train; draw it with 'lossvista run --preset {args.preset}'")
    out = args.out or f"runs/{cfg.name}"
    with stop_on_signals():
        info = train(cfg.train, out, restart=args.restart, name=cfg.name)
    last = info["history"][-1]
    print(f"trained {cfg.train.model} on {info['dataset']['name']} for {last['epoch']} epoch{'' if last['epoch'] == 1 else 's'}: "
          f"test accuracy {last['test_accuracy']:.3f}, test loss {last['test_loss']:.4f}", file=sys.stderr)
    print(out)
    return 0
