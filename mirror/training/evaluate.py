"""`mirror eval`: validation metrics (losses, recognition, alignment Recall@1) of a checkpoint, or zero-shot of
the models a config builds (e.g. ViCLIP with `understanding.checkpoint=...`), written as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import lightning as L

from mirror.config import load_config
from mirror.errors import ConfigError, MirrorError
from mirror.training.checkpoint import load_module
from mirror.training.module import MirrorModule
from mirror.training.run import build_datamodule, run_dir


def evaluate(ckpt: str | Path | None, overrides: Sequence[str] = (), config: str | Path | None = None
             ) -> tuple[dict[str, float], Path]:
    """Validate a checkpoint (or, with `config` alone, the untrained/pretrained models it builds) on the
    held-out split; writes `<run>/eval/<checkpoint or zero_shot>.json`."""
    if ckpt is not None:
        ckpt = Path(ckpt)
        cfg, datamodule, module = load_module(ckpt, overrides)
        out = ckpt.resolve().parent.parent / "eval" / f"{ckpt.stem}.json"
    elif config is not None:
        cfg = load_config(config, overrides)
        datamodule = build_datamodule(cfg)
        module = MirrorModule(cfg, datamodule.spec)
        out = run_dir(cfg) / "eval" / "zero_shot.json"
    else:
        raise ConfigError("give --ckpt CKPT, or an experiment config to evaluate its models zero-shot")
    if datamodule.val_set() is None:
        raise MirrorError(f"data '{cfg.data.name}' has no validation split to evaluate on")
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        precision=cfg.trainer.precision,
        logger=False,
        enable_progress_bar=cfg.trainer.progress_bar,
        enable_model_summary=False,
    )
    metrics = {k: float(v) for k, v in trainer.validate(module, datamodule=datamodule, verbose=False)[0].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"checkpoint": str(ckpt) if ckpt else None, "metrics": metrics}, indent=2))
    return metrics, out
