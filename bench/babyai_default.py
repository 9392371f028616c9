"""Where the time of the embedded default (`make train`: configs/babyai/mirror.yaml) goes, on this machine.

Each part is measured on its own with the default's settings, then projected onto the whole run (its step
count, validations, rollout and demo counts) and printed as one JSON line of seconds and shares:
- demos: minigrid's bot with point-of-view frames, one worker process (the default uses `data.demo_workers`);
- a training step split into data (one batch, made in the training process as the default does), U forward+backward,
  E forward+backward, the alignment, the optimiser, and `other` (the whole step timed as the trainer runs it,
  less those parts);
- each validation: recognition and alignment on the held-out episodes, rollouts in worker processes; the final
  report: the final rollouts, the language probe (Procrustes permutations) and the t-SNE;
plus the torch thread settings it ran with. Demos for the measurement are generated into a temporary folder
(1000 training episodes: the step's cost does not depend on how many there are).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.benchmarks.babyai.demos import episode_seed, generate  # noqa: E402
from mirror.config import load_config  # noqa: E402

CONFIG = ROOT / "configs" / "babyai" / "mirror.yaml"
STEPS, DEMOS = 12, 300


def seconds(fn: Callable[[], object], repeats: int) -> float:
    """Mean wall time of `fn` over `repeats` calls after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def threads() -> dict:
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "cpus": len(os.sched_getaffinity(0)),
            **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}}


def main() -> None:
    from mirror.data.module import build_datamodule
    from mirror.probe.features import extract
    from mirror.probe.language import agent_instruction_embeddings, compare, reference_spaces, tsne_plot
    from mirror.training.module import MirrorModule
    from mirror.training.optim import build_optimizer, build_param_groups
    from mirror.training.trainer import cpu_threads

    default = load_config(CONFIG)
    torch.set_num_threads(cpu_threads(default) or torch.get_num_threads())
    d = default.data
    seeds = [episode_seed(0, "train", i) for i in range(DEMOS)]
    demo_s = seconds(lambda: generate("GoToLocal", seeds, d.tile, 1, "demos"), 1) / DEMOS

    with TemporaryDirectory() as tmp:
        cfg = load_config(CONFIG, [f"data.root={tmp}", "data.episodes=1000", "data.val_episodes=200", "logger=none"])
        data = build_datamodule(cfg)
        module = MirrorModule(cfg, data.spec).train()
        batch_size = cfg.data.batch_size
        optimizer = build_optimizer(build_param_groups(
            {"understanding": module.understanding, "execution": module.execution}, module.alignment, cfg,
            batch_size), cfg)
        loader = iter(torch.utils.data.DataLoader(data.train_set(), batch_sampler=data.train_dataloader().batch_sampler,
                                                  collate_fn=data.collate))
        batches = [next(loader) for _ in range(STEPS + 1)]
        data_s = seconds(lambda: next(loader), STEPS)

        def part(name: str, step: int) -> Callable[[], None]:
            def run() -> None:
                batch = batches[step % len(batches)]
                if name == "understanding":
                    task = module.understanding_trains(step)
                    out = module.understanding(batch["understanding"], task=task)
                    loss = out.feature.sum() * 0 + (cfg.understanding.weight * out.loss if task else 0)
                elif name == "execution":
                    out = module.execution(batch["execution"], task=True)
                    loss = out.feature.sum() * 0 + cfg.execution.weight * out.loss
                else:
                    n = len(batch["keys"]["instruction"])
                    u = torch.randn(n, module.understanding.feature_dim, requires_grad=True)
                    e = torch.randn(n, module.execution.feature_dim, requires_grad=True)
                    loss = module.alignment(u, e, batch["keys"]["instruction"], distributed=False).loss
                loss.backward()
            return run

        parts = {}
        for name in ("understanding", "execution", "alignment"):
            total = 0.0
            for step in range(STEPS):  # alternating steps: U's task loss trains on half of them
                total += seconds(part(name, step), 1)
            parts[name] = total / STEPS
        loss, _ = module.training_loss(batches[0], 0)
        loss.backward()  # the optimiser is timed on real gradients
        parts["optimiser"] = seconds(optimizer.step, STEPS)
        optimizer.zero_grad()

        def whole(step: int) -> None:
            loss, _ = module.training_loss(batches[step % len(batches)], step)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        step_s = sum(seconds(lambda s=s: whole(s), 1) for s in range(STEPS)) / STEPS
        parts["other"] = max(0.0, step_s - sum(parts.values()))
        threads_used, other = torch.get_num_threads(), 2 if torch.get_num_threads() == 1 else 1
        torch.set_num_threads(other)
        other_step_s = sum(seconds(lambda s=s: whole(s), 1) for s in range(STEPS)) / STEPS
        torch.set_num_threads(threads_used)

        module.eval()
        val = data.val_dataloader()
        per_pass = seconds(lambda: [module.validation_step(b, 0) for b in val], 1)
        recognition_s = per_pass * d.val_episodes / cfg.data.val_episodes
        runner = data.rollout_runner()
        try:
            runner.run(module, runner.episodes(final=False, count=25 * d.rollout_workers))  # start the workers
            rollout_s = seconds(lambda: runner.run(module, runner.episodes(final=False, count=100)), 1) / 100
        finally:
            runner.close()
        feats = extract(module, data.feature_loader("val"), "features")
        tsne_s = seconds(lambda: tsne_plot(feats["z_u"].numpy(), feats["z_e"].numpy(), feats["key_instruction"].numpy(),
                                           Path(tmp) / "tsne.png"), 1)
        n = len(data.spec.instructions)
        probe_s = seconds(lambda: compare(agent_instruction_embeddings(module.execution, n),
                                          reference_spaces(data.spec.instructions, module.understanding),
                                          permutations=200), 1)

    t = default.trainer
    validations = t.max_steps // t.val_every
    run = {
        "demos": demo_s * (d.episodes + d.val_episodes) / max(1, d.demo_workers),
        "data": data_s * t.max_steps,
        **{k: v * t.max_steps for k, v in parts.items()},
        "recognition": recognition_s * validations,
        "rollouts": rollout_s * d.rollout_episodes * validations,
        "final_rollouts": rollout_s * d.final_rollout_episodes,
        "language_probe": probe_s,
        "tsne": tsne_s,
    }
    total = sum(run.values())
    print(json.dumps({
        "bench": "babyai_default", "config": "configs/babyai/mirror.yaml", **threads(),
        "demo_ms_per_episode_1worker": round(1000 * demo_s, 2), "data_ms_per_batch": round(1000 * data_s, 1),
        "step_ms": round(1000 * step_s, 1),
        f"step_ms_at_{other}_threads": round(1000 * other_step_s, 1),
        **{f"{k}_ms": round(1000 * v, 1) for k, v in parts.items()},
        "recognition_s": round(recognition_s, 2), "rollout_ms_per_episode": round(1000 * rollout_s, 1),
        "probe_s": round(probe_s, 2), "tsne_s": round(tsne_s, 2),
        "projected_run_s": round(total, 1), "share": {k: round(v / total, 3) for k, v in run.items()},
    }))


if __name__ == "__main__":
    main()
