"""Does U trained alone leave chance on BabyAI? The first 600 steps of the default 1800-step schedule (the
schedule's own learning rates, stopped after the validation at step 600), U alone (`baseline.yaml`) against the
joint run (`mirror.yaml`), over seeds, one thread per run, one run at a time.

Per run: U's training InfoNCE over the last 100 logged steps before step 600 (chance: ln of the 32 paired clips,
3.466), its validation recognition at step 600 (chance 1/36), and how collapsed its embeddings are (mean cosine
between the validation clips' video embeddings and between the 36 missions' text embeddings: near 1 when every
input maps to one point). A run "left chance" when its loss is below ln 32 - 0.3. Prints one JSON line; the
ratio compares the share of U-alone runs that left chance with the joint runs'.

    python bench/babyai_u_alone.py [--seeds 0 1 2 3 4] [KEY=VALUE ...]   # ~4 min per run on one core
    python bench/babyai_u_alone.py understanding.lr=5e-4                 # U's former rate, where it collapsed
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
from pathlib import Path

import lightning as L
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.config import load_config  # noqa: E402
from mirror.data.module import build_datamodule  # noqa: E402
from mirror.training.checkpoint import read_checkpoint, restore_module  # noqa: E402
from mirror.training.run import train  # noqa: E402

STOP, PAIRS = 600, 32
CHANCE = math.log(PAIRS)


class StopAfterValidation(L.Callback):
    """Ends training once the validation at step `STOP` is done."""

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.global_step >= STOP:
            trainer.should_stop = True


def collapse(run: Path) -> tuple[float, float]:
    """Mean off-diagonal cosine of U's video embeddings (64 validation clips) and text embeddings (missions)."""
    ckpt = run / "checkpoints" / f"step{STOP:07d}.ckpt"
    module = restore_module(read_checkpoint(ckpt), ckpt).eval()
    datamodule = build_datamodule(module.cfg)
    batch = next(iter(datamodule.feature_loader("val")))
    u = module.understanding
    with torch.no_grad():
        v = u.embed_videos(batch["understanding"]["video"][:64])
        t = u.embed_texts(module.spec.instructions)
    return tuple(float((x @ x.T)[~torch.eye(len(x), dtype=torch.bool)].mean()) for x in (v, t))


def one_run(config: str, seed: int, root: Path, overrides: list[str]) -> dict:
    cfg = load_config(ROOT / config, [f"seed={seed}", f"run.root={root}", f"run.name={Path(config).stem}-{seed}",
                                      "logger=csv", "trainer.threads=1", "data.rollout_episodes=0",
                                      "data.final_rollout_episodes=0", f"trainer.ckpt_every={STOP}", *overrides])
    run = train(cfg, callbacks=[StopAfterValidation()])
    with open(run / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    loss = [float(r["train/loss_au"]) for r in rows if r.get("train/loss_au") and STOP - 100 <= int(r["step"]) < STOP]
    recognition = [float(r["val/u/recognition"]) for r in rows if r.get("val/u/recognition")]
    video, text = collapse(run)
    return {"seed": seed, "loss_au": float(np.mean(loss)), "recognition": recognition[-1],
            "left_chance": bool(np.mean(loss) < CHANCE - 0.3), "video_cos": video, "text_cos": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("overrides", nargs="*", help="changes to both configs, e.g. understanding.lr=2e-4")
    args = parser.parse_args()
    out = {"stop_step": STOP, "chance_loss": CHANCE, "overrides": args.overrides}
    with tempfile.TemporaryDirectory() as tmp:
        for arm, config in (("u_alone", "configs/babyai/baseline.yaml"), ("joint", "configs/babyai/mirror.yaml")):
            out[arm] = [one_run(config, s, Path(tmp), args.overrides) for s in args.seeds]
    share = {arm: sum(r["left_chance"] for r in out[arm]) / len(args.seeds) for arm in ("u_alone", "joint")}
    out["left_chance"] = share
    out["ratio_u_alone_to_joint"] = share["u_alone"] / share["joint"] if share["joint"] else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
