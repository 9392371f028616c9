"""The `mirror` command: train, eval, probe and demos.

Errors the user can act on print one line and exit non-zero (2 for a bad config, 1 otherwise).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from mirror.errors import MirrorError


def _train(args: argparse.Namespace) -> None:
    from mirror.config import load_config
    from mirror.training.run import train

    directory = train(load_config(args.config, args.overrides))
    print(f"run finished: {directory}")


def _eval(args: argparse.Namespace) -> None:
    from mirror.training.evaluate import evaluate

    metrics, out = evaluate(args.ckpt, args.overrides)
    width = max(map(len, metrics), default=0)
    for key, value in sorted(metrics.items()):
        print(f"{key:<{width}}  {value:.4f}")
    print(f"written: {out}")


def _demos(args: argparse.Namespace) -> None:
    from mirror.data.sources import run_source

    run_source(args.source, args.args)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mirror", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train U and E jointly from an experiment config")
    p.add_argument("config", help="experiment YAML, e.g. configs/babyai/mirror.yaml")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. trainer.devices=2 align.tau=0.2")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on its run's held-out data")
    p.add_argument("--ckpt", required=True, help="checkpoint written by `mirror train`")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="changes to the saved config")
    p.set_defaults(func=_eval)

    p = sub.add_parser("demos", help="generate or preprocess demonstrations")
    p.add_argument("source", help="babyai or rlbench")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the source's own options (see `mirror demos SOURCE -h`)")
    p.set_defaults(func=_demos)
    return top


def _quiet_third_party_noise() -> None:
    """Drop Lightning's advertisement and a deprecation warning it raises on every step."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    _quiet_third_party_noise()
    try:
        args.func(args)
    except MirrorError as err:
        print(f"mirror {args.command}: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
