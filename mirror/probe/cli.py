"""`mirror probe`: alignment probing of frozen models, over a training series, or from feature files;
and `mirror probe babyai RUN_DIR`, the language probe of a BabyAI run (P@k and Procrustes vs references).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

from mirror.errors import ConfigError, MirrorError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", help="an experiment config, or 'babyai' for the language probe of a run")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE|RUN_DIR", help="config changes (or the BabyAI run)")
    p.add_argument("--understanding", metavar="CKPT", help="checkpoint holding the understanding model U")
    p.add_argument("--execution", metavar="CKPT", help="checkpoint holding the execution model E")
    p.add_argument("--series", metavar="DIR", help="probe every checkpoint in DIR (a run or its checkpoints)")
    p.add_argument("--steps", type=int, nargs="+", help="with --series: only these steps")
    p.add_argument("--features", nargs=2, metavar=("U", "E"), help=".npy/.pt arrays of paired feature rows")
    p.add_argument("--keys", metavar="FILE", help="with --features: the positive key of each row (default: own row)")
    p.add_argument("--labels", metavar="FILE", help="success labels per training pair: probe both subsets")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=FILE",
                   help="babyai: extra reference embeddings aligned to the run's missions.txt")
    p.add_argument("--ckpt", help="babyai: checkpoint to probe (default: the latest step's)")
    p.add_argument("--epochs", type=int, default=30, help="epochs of training T_u and T_e")
    p.add_argument("--out", help="output folder (default: the run's probe/ folder or ./probe)")


def run(args: argparse.Namespace) -> None:
    if args.target == "babyai":
        return language(args)
    if args.features:
        return from_files(args)
    if args.target is None:
        raise ConfigError("give an experiment config (with --understanding/--execution or --series), "
                          "'babyai RUN_DIR', or --features U E")
    return from_models(args)


def _write(out: Path, name: str, result: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def _per_row(path: str, rows: int, what: str):
    """A file holding one entry per row (labels, keys), its length checked: one line naming the file."""
    from mirror.probe.references import load_array

    values = load_array(path)
    count = len(values) if isinstance(values, dict) or getattr(values, "ndim", 1) else 1
    if count != rows:
        raise ConfigError(f"{path} has {count} {what}, for {rows} pairs: give one per pair")
    return values


def _success_failure(pairs, labels_path: str, epochs: int, labels=None) -> dict:
    """The success / failure probe of `pairs` with the labels in `labels_path` (read unless given); its
    problems as one line."""
    from mirror.probe.alignment import success_failure

    labels = _per_row(labels_path, len(pairs), "labels") if labels is None else labels
    try:
        return success_failure(pairs, labels, epochs=epochs)
    except ValueError as err:
        raise MirrorError(f"--labels {labels_path}: {err}") from None


def _print(result: dict) -> None:
    r1, c1 = result["recall1"], result["chance1"]
    print(f"Recall@1 {100 * r1:.1f}% (chance {100 * c1:.1f}%), Recall@5 {100 * result['recall5']:.1f}% "
          f"(chance {100 * result['chance5']:.1f}%), {result['n_train']} train / {result['n_test']} test pairs")


def from_files(args: argparse.Namespace) -> None:
    import torch

    from mirror.config.schema import AlignConfig
    from mirror.probe.alignment import Pairs, probe
    from mirror.probe.references import load_array

    u, e = (torch.as_tensor(load_array(f), dtype=torch.float32) for f in args.features)
    if len(u) != len(e):
        raise MirrorError(f"{args.features[0]} has {len(u)} rows, {args.features[1]} has {len(e)}")
    keys = torch.as_tensor(_per_row(args.keys, len(u), "keys")).long() if args.keys else torch.arange(len(u))
    labels = _per_row(args.labels, len(u), "labels") if args.labels else None  # checked before the probe trains
    pairs = Pairs(u, e, keys)
    defaults = AlignConfig()
    train, test = pairs.split(0.3, seed=0)
    result = {"probe": probe(train, test, defaults.dim, defaults.tau, args.epochs, bootstrap=1000).as_dict()}
    if args.labels:
        result["success_vs_failure"] = _success_failure(pairs, args.labels, args.epochs, labels)
    _print(result["probe"])
    print(f"written: {_write(Path(args.out or 'probe'), 'features', result)}")


def _checkpoints(folder: Path, steps: list[int] | None) -> list[tuple[int, Path]]:
    folder = folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder
    found = []
    for path in folder.glob("step*.ckpt"):
        match = re.search(r"step(\d+)", path.stem)
        if match and (steps is None or int(match.group(1)) in steps):
            found.append((int(match.group(1)), path))
    if not found:
        raise MirrorError(f"no step*.ckpt checkpoints in {folder}")
    return sorted(found)


def from_models(args: argparse.Namespace) -> None:
    from mirror.config import load_config
    from mirror.data.module import build_datamodule
    from mirror.plots import line_chart
    from mirror.probe.alignment import Pairs, probe
    from mirror.probe.features import extract
    from mirror.training.checkpoint import load_branch
    from mirror.training.module import MirrorModule
    from mirror.training.run import run_dir

    cfg = load_config(args.target, args.overrides)
    datamodule = build_datamodule(cfg)
    module = MirrorModule(cfg, datamodule.spec)
    out = Path(args.out) if args.out else run_dir(cfg) / "probe"
    loaders = {split: datamodule.feature_loader(split) for split in ("train", "val")}
    positives = f"key_{cfg.align.positives.value}"

    def measure(bootstrap: int) -> tuple[dict, Pairs]:
        feats = {s: extract(module, loader, f"{s} features") for s, loader in loaders.items()}
        train, test = (Pairs(f["u"], f["e"], f[positives]) for f in (feats["train"], feats["val"]))
        return probe(train, test, cfg.align.dim, cfg.align.tau, args.epochs, bootstrap).as_dict(), train

    if args.series:
        rows = []
        for step, path in _checkpoints(Path(args.series), args.steps):
            load_branch(module, "understanding", path)
            load_branch(module, "execution", path)
            result, _ = measure(bootstrap=0)
            rows.append({"step": step, **{k: v for k, v in result.items() if k != "ci1"}})
            print(f"step {step}: ", end="")
            _print(result)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "series.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        steps = [r["step"] for r in rows]
        line_chart(steps, {"Recall@1": [r["recall1"] for r in rows], "Recall@5": [r["recall5"] for r in rows]},
                   out / "series.png", "alignment over training", "step", "recall", chance=rows[-1]["chance1"])
        _write(out, "series", {"checkpoints": rows})
        _log_series(cfg, out, rows)
        print(f"written: {out / 'series.csv'}, {out / 'series.png'}")
        return
    if not (args.understanding and args.execution):
        raise ConfigError("give --understanding CKPT and --execution CKPT (or --series DIR)")
    load_branch(module, "understanding", args.understanding)
    load_branch(module, "execution", args.execution)
    result, train = measure(bootstrap=1000)
    report = {"probe": result, "understanding": args.understanding, "execution": args.execution}
    if args.labels:
        report["success_vs_failure"] = _success_failure(train, args.labels, args.epochs)
    _print(result)
    print(f"written: {_write(out, 'probe', report)}")


def _log_series(cfg, out: Path, rows: list[dict]) -> None:
    """The curve as a W&B table and image (offline unless a key is configured), when W&B is the logger."""
    from lightning.pytorch.loggers import WandbLogger

    from mirror.training.logging import build_logger

    logger = build_logger(cfg, out)
    if isinstance(logger, WandbLogger):
        logger.log_table("probe/series", list(rows[0]), [list(r.values()) for r in rows])
        logger.log_image("probe/series_chart", [str(out / "series.png")])
        logger.experiment.finish()


def language(args: argparse.Namespace) -> None:
    """Agent instruction embeddings of a BabyAI run vs MiniLM, CLIP text, bag of words and given files."""
    from mirror.probe.language import agent_instruction_embeddings, compare, markdown, reference_spaces
    from mirror.training.checkpoint import load_module
    from mirror.training.run import latest_checkpoint

    if len(args.overrides) != 1:
        raise ConfigError("usage: mirror probe babyai RUN_DIR [--ckpt CKPT] [--reference NAME=FILE ...]")
    run = Path(args.overrides[0])
    ckpt = Path(args.ckpt) if args.ckpt else latest_checkpoint(run)
    if ckpt is None:
        raise MirrorError(f"no checkpoint in {run}")
    files = {}
    for item in args.reference:
        name, sep, path = item.partition("=")
        if not sep:
            raise ConfigError(f"--reference '{item}' is not NAME=FILE")
        files[name] = path
    cfg, datamodule, module = load_module(ckpt)
    texts = datamodule.spec.instructions
    out = Path(args.out) if args.out else run / "probe"
    out.mkdir(parents=True, exist_ok=True)
    (out / "missions.txt").write_text("\n".join(texts) + "\n")
    agent = agent_instruction_embeddings(module.execution, len(texts))
    rows = compare(agent, reference_spaces(texts, module.understanding, files))
    table = markdown(rows)
    (out / "language.md").write_text(f"# {ckpt}\n\n{table}\n")
    _write(out, "language", {"checkpoint": str(ckpt), "rows": rows})
    print(table)
    print(f"written: {out / 'language.md'} (missions in {out / 'missions.txt'})")
