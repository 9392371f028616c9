"""`mirror eval`: a checkpoint's validation metrics (losses, recognition, alignment Recall@1), as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import lightning as L

from mirror.errors import MirrorError
from mirror.training.checkpoint import load_module


def evaluate(ckpt: str | Path, overrides: Sequence[str] = ()) -> tuple[dict[str, float], Path]:
    """Validate a checkpoint on its run's held-out split; writes `<run>/eval/<checkpoint>.json`."""
    ckpt = Path(ckpt)
    cfg, datamodule, module = load_module(ckpt, overrides)
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
    out = ckpt.resolve().parent.parent / "eval" / f"{ckpt.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"checkpoint": str(ckpt), "metrics": metrics}, indent=2))
    return metrics, out
