"""The BabyAI end-of-training summary: final rollouts, recognition, alignment and the language probe.

Printed as one table, written to `<run>/summary.{json,md}` with its plots, and logged to W&B.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from mirror.errors import MissingExtra
from mirror.probe.features import extract
from mirror.probe.language import agent_instruction_embeddings, compare, markdown, reference_spaces, tsne_plot
from mirror.rollouts.evaluation import RolloutRunner, evaluate, report


def _metric(trainer: L.Trainer, key: str) -> float | None:
    value = trainer.callback_metrics.get(key)
    return None if value is None else float(value)


def summary_table(rows: list[tuple[str, float | None, float | None]]) -> str:
    lines = ["| metric | value | chance |", "|---|---|---|"]
    for name, value, chance in rows:
        show = "n/a" if value is None else f"{value:.3f}" if abs(value) < 1.5 else f"{value:.1f}"
        lines.append(f"| {name} | {show} | {'' if chance is None else f'{chance:.3f}'} |")
    return "\n".join(lines)


class BabyAISummary(L.Callback):
    """On fit end: final rollouts on every rank; the rest on rank 0 (it only reads the trained module)."""

    def __init__(self, runner: RolloutRunner):
        self.runner = runner

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        folder = Path(trainer.default_root_dir)
        values, results = evaluate(trainer, module, self.runner, final=True, prefix="final")
        report(trainer, values, results, self.runner.tasks, folder / "plots", "final_rollouts", "final")
        self.runner.close()
        if trainer.global_rank != 0:
            return
        datamodule = trainer.datamodule
        spec = datamodule.spec
        rows: list[tuple[str, float | None, float | None]] = [
            (f"success rate {t} (%)", values.get(f"final/success/{t}"), None) for t in self.runner.tasks
        ]
        n = len(spec.instructions)
        rows.append(("recognition top-1 (val)", _metric(trainer, "val/u/recognition"), 1 / n))
        rows.append(("alignment Recall@1 (val)", _metric(trainer, "val/align/recall1"),
                     _metric(trainer, "val/align/recall1_chance")))
        probe_rows, probe_note = [], ""
        if module.execution is not None and hasattr(module.execution, "encode_instructions"):
            agent = agent_instruction_embeddings(module.execution, n)
            try:
                spaces = reference_spaces(spec.instructions, module.understanding)
            except MissingExtra as err:  # MiniLM is the extra 'probe'
                probe_note = f"Language probe skipped: {err}"
                rows.append(("P@15 vs MiniLM (agent instructions)", None, None))
            else:
                probe_rows = compare(agent, spaces, permutations=200)
                minilm = probe_rows[0]
                rows.append(("P@15 vs MiniLM (agent instructions)", minilm.get("P@15"), minilm.get("P@15 chance")))
        images = {}
        if module.alignment is not None:
            feats = extract(module, datamodule.feature_loader("val"), "aligned features")
            positives = module.cfg.align.positives.value
            labels = feats[f"key_{positives}"].numpy()
            names = {"instruction": spec.instructions, "task": spec.tasks}.get(positives)
            tsne = folder / "plots" / "tsne.png"
            images["tsne"] = tsne_plot(feats["z_u"].numpy(), feats["z_e"].numpy(), labels, tsne, names=names)
        table = summary_table(rows)
        text = f"## Summary (step {trainer.global_step})\n\n{table}\n"
        if probe_rows:
            text += f"\n## Agent instruction embeddings vs references ({n} instructions)\n\n{markdown(probe_rows)}\n"
        if probe_note:
            text += f"\n{probe_note}\n"
        (folder / "summary.md").write_text(text)
        (folder / "summary.json").write_text(json.dumps(
            {"step": trainer.global_step, "rollouts": values, "summary": [list(r) for r in rows],
             "language_probe": probe_rows}, indent=2))
        print("\n" + text)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_metrics({f"summary/{name}": v for name, v, _ in rows if v is not None},
                                   step=trainer.global_step)
                for key, path in images.items():
                    logger.log_image(f"summary/{key}", [str(path)], step=trainer.global_step)
