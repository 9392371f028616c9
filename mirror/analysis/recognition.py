"""Held-out action recognition of U (paper Sec. 4.1): one clip per test episode, the instruction whose text is
closest among all the data's instructions; measured on clips from the first 25%, 50% and 100% of each episode
(how early does U know?), and at 100% against held-out paraphrases of the instructions (language
generalisation). Per-clip results go to `recognition.csv` (paired comparisons of runs use them), the
confusion matrix at 100% to `confusion.png`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from mirror.models.protocol import DataSpec
from mirror.plots import confusion_matrix

SPANS = (0.25, 0.5, 1.0)
BATCH = 32


def predict(understanding: torch.nn.Module, videos: np.ndarray, texts: list[str]) -> np.ndarray:
    """For each clip, the index of the closest of `texts`."""
    device = next(understanding.parameters()).device
    words = understanding.embed_texts(texts)
    chosen = []
    for start in range(0, len(videos), BATCH):
        clip = torch.from_numpy(videos[start : start + BATCH]).to(device)
        chosen.append((understanding.embed_videos(clip) @ words.T).argmax(1).cpu())
    return torch.cat(chosen).numpy()


def recognition(understanding: torch.nn.Module, datamodule, split: str, out: Path) -> dict[str, float]:
    """Top-1 recognition of the split's clips (overall and per task) at each span, with the instructions and,
    where the data has them, with the paraphrases; writes recognition.csv and confusion.png into `out`."""
    spec: DataSpec = datamodule.spec
    understanding.eval()
    rows, metrics = [], {}
    phrasings = {"instruction": spec.instructions, "paraphrase": spec.paraphrases}
    for span in SPANS:
        clips = datamodule.clips(split, span)
        if clips is None:
            return {}
        videos, labels, tasks = clips
        for kind, texts in phrasings.items():
            if not texts or (kind == "paraphrase" and span != 1.0):
                continue
            guess = predict(understanding, videos, texts)
            correct = guess == labels
            name = f"recognition/{kind}@{span:g}"
            metrics[name] = float(correct.mean())
            for t, task in enumerate(spec.tasks):
                if (tasks == t).any():
                    metrics[f"{name}/{task}"] = float(correct[tasks == t].mean())
            rows += [{"clip": i, "task": spec.tasks[tasks[i]], "instruction": int(labels[i]), "span": span,
                      "phrasing": kind, "predicted": int(guess[i]), "correct": int(correct[i])}
                     for i in range(len(labels))]
            if kind == "instruction" and span == 1.0:
                matrix = np.zeros((len(texts), len(texts)), dtype=int)
                np.add.at(matrix, (labels, guess), 1)
                confusion_matrix(matrix, texts, out / "confusion.png",
                                 f"recognition of {len(labels)} {split} clips: top-1 {correct.mean():.3f}")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "recognition.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return metrics
