"""The `mirror` command: train, config, eval, probe, report, convert and demos.

Errors the user can act on print one line and exit non-zero (2 for a bad config, 1 otherwise).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from mirror.errors import MirrorError
from mirror.probe.cli import add_arguments as add_probe_arguments
from mirror.registry import BENCHMARKS


def _train(args: argparse.Namespace) -> None:
    from mirror.config import load_config
    from mirror.training.run import train

    directory = train(load_config(args.config, args.overrides))
    print(f"run finished: {directory}")


def _eval(args: argparse.Namespace) -> None:
    from mirror.training.evaluate import Rollouts, evaluate

    overrides = list(args.overrides)
    config = args.config
    if config is not None and "=" in config:
        overrides.insert(0, config)
        config = None
    told = "twin" if args.twin else "paraphrase" if args.paraphrase else "instruction"
    plan = Rollouts(tasks=args.tasks, episodes=args.episodes, repeats=args.repeats, told=told, video=args.video,
                    failures=args.failures, reuse=args.reuse)
    report, out = evaluate(args.ckpt, overrides, config, plan)
    metrics = report["metrics"]
    width = max(map(len, metrics), default=0)
    for key, value in sorted(metrics.items()):
        print(f"{key:<{width}}  {value:.4f}")
    if "success" in report:
        print((out / "table.md").read_text())
        if (out / "failures.md").is_file():
            print((out / "failures.md").read_text())
    print(f"written: {out}")


def _probe(args: argparse.Namespace) -> None:
    from mirror.probe.cli import run

    run(args)


def _report(args: argparse.Namespace) -> None:
    from pathlib import Path

    from mirror.analysis.report import report

    path = report(args.runs, Path(args.out), args.compare or (), args.eval)
    print(path.read_text())
    print(f"written: {path}")


def _config(args: argparse.Namespace) -> None:
    from mirror.training.inspect import describe

    print(describe(args.config, args.overrides))


def _demos(args: argparse.Namespace) -> None:
    from mirror.registry import run_demos

    run_demos(args.source, args.args)


def _convert(args: argparse.Namespace) -> None:
    from mirror.models.execution.arp import convert

    count = convert(args.ckpt, args.out)
    print(f"converted {count} tensors: {args.out} (use it as execution.checkpoint)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mirror", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train U and E jointly from an experiment config")
    p.add_argument("config", help="experiment YAML, e.g. configs/babyai/mirror.yaml")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. trainer.devices=2 align.tau=0.2")
    p.set_defaults(func=_train)

    p = sub.add_parser("config", help="the merged config, its models' sizes, and whether every file it reads exists")
    p.add_argument("config", help="experiment YAML")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=_config)

    p = sub.add_parser("eval", help="evaluate a checkpoint (or a config's models zero-shot) on held-out data")
    p.add_argument("config", nargs="?", help="experiment config, to evaluate its models without training")
    p.add_argument("--ckpt", help="checkpoint written by `mirror train`")
    p.add_argument("--tasks", nargs="+", help="tasks (or levels) to roll out, or 'all' (default)")
    p.add_argument("--episodes", type=int, help="test episodes per task (default: data.test_episodes)")
    p.add_argument("--repeats", type=int, help="repeated evaluations on fresh test scenes, mean +- std per task "
                   "(default: data.test_repeats)")
    p.add_argument("--video", type=int, default=0, metavar="N", help="film N episodes per task (MP4 in the "
                   "evaluation folder, named by task, seed and outcome; the first of each task to W&B)")
    p.add_argument("--failures", action="store_true", help="with --video N: film each task's first N failed "
                   "episodes instead (played once more), captioned with the failure's cause")
    told = p.add_mutually_exclusive_group()
    told.add_argument("--twin", action="store_true", help="tell each episode its twin task's instruction "
                      "(Meta-World: does the policy need language?)")
    told.add_argument("--paraphrase", action="store_true", help="tell each episode its instruction's held-out "
                      "paraphrase (Meta-World: does the policy's language generalise?)")
    p.add_argument("--reuse", action="store_true", help="keep the run's evaluation of this checkpoint if it is of "
                   "the same training step and was asked for with the same options")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="changes to the saved config")
    p.set_defaults(func=_eval)

    p = sub.add_parser("probe", help="measure how two models' representations align (paper Sec. 2)")
    add_probe_arguments(p)
    p.set_defaults(func=_probe)

    p = sub.add_parser("report", help="finished runs side by side: over seeds with intervals, comparisons over runs")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--compare", nargs=2, action="append", metavar=("A", "B"),
                   help="compare two groups of runs (names without -seedN), the run as the unit, e.g. "
                        "metaworld-mirror metaworld-arp; repeatable")
    p.add_argument("--eval", metavar="NAME", help="take every run's evaluation eval/NAME (default: the full "
                   "evaluation of its latest checkpoint step)")
    p.add_argument("--out", default="runs/report", help="folder for report.md and the charts")
    p.set_defaults(func=_report)

    p = sub.add_parser("convert", help="convert released weights to this project's layout")
    kinds = p.add_subparsers(dest="kind", required=True)
    q = kinds.add_parser("arp", help="ARP's released RLBench checkpoint (mlzxy/arp model_*.pth)")
    q.add_argument("ckpt", help="ARP checkpoint file")
    q.add_argument("out", help="file to write (a state dict for execution.checkpoint)")
    q.set_defaults(func=_convert)

    p = sub.add_parser("demos", help="generate or preprocess demonstrations")
    p.add_argument("source", help=", ".join(BENCHMARKS))
    p.add_argument("args", nargs=argparse.REMAINDER, help="the source's own options (see `mirror demos SOURCE -h`)")
    p.set_defaults(func=_demos)
    return top


def _quiet_third_party_noise() -> None:
    """Drop Lightning's advertisement and a deprecation warning it raises on every step."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage() and "litmodels" not in record.getMessage()
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
