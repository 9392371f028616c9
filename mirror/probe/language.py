"""Do action-grounded instruction embeddings align with language models? (Milano & Nolfi, BabyAI)

The agent's sentence embedding of every instruction is compared with reference embeddings of the same
instructions by precision@k (k = 1, 5, 10, 15; chance k / (n - 1)) and Procrustes disparity at a fixed PCA
width with a permutation null. A t-SNE of the aligned representations shows both models in one map.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mirror.models.minilm import TextSource
from mirror.plots import scatter_2d
from mirror.probe import references
from mirror.probe.similarity import precision_at_k, procrustes_test

KS = (1, 5, 10, 15)


def agent_instruction_embeddings(agent: torch.nn.Module, count: int) -> np.ndarray:
    """The execution model's sentence embedding of each of the data's `count` instructions."""
    agent.eval()
    with torch.no_grad():
        ids = torch.arange(count, device=next(agent.parameters()).device)
        return agent.encode_instructions(ids)[2].float().cpu().numpy()


def reference_spaces(texts: list[str], understanding: torch.nn.Module | None,
                     files: Mapping[str, str] = ()) -> dict[str, np.ndarray]:
    """MiniLM, the understanding model's text side, bag of words, and user files by name."""
    spaces = {"MiniLM": references.minilm(texts)}
    if understanding is not None and hasattr(understanding, "text_inputs"):
        side = "MiniLM + projection" if understanding.cfg.text == TextSource.minilm else "CLIP text"
        spaces[f"{side} (U)"] = references.understanding_text(understanding, texts)
    spaces["bag of words"] = references.bag_of_words(texts)
    for name, path in dict(files).items():
        spaces[name] = references.from_file(path, texts)
    return spaces


def compare(agent: np.ndarray, spaces: Mapping[str, np.ndarray], width: int = 16,
            permutations: int = 1000) -> list[dict]:
    """One row per reference: precision@k with chance, Procrustes disparity with its null."""
    n = len(agent)
    rows = []
    for name, ref in spaces.items():
        row: dict = {"reference": name, "n": n}
        for k in KS:
            if k < n:
                row[f"P@{k}"] = precision_at_k(agent, ref, k)
                row[f"P@{k} chance"] = k / (n - 1)
        test = procrustes_test(agent, ref, width, permutations)
        row.update({"procrustes": test.disparity, "procrustes null": test.null_mean,
                    "procrustes null std": test.null_std, "procrustes p": test.p_value, "pca width": test.width})
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    """The comparison as a Markdown table, chance beside each score."""
    ks = [k for k in KS if f"P@{k}" in rows[0]]
    head = ["reference"] + [f"P@{k} (chance)" for k in ks] + ["Procrustes (null mean, p)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["reference"]] + [f"{r[f'P@{k}']:.3f} ({r[f'P@{k} chance']:.3f})" for k in ks]
        cells.append(f"{r['procrustes']:.3f} ({r['procrustes null']:.3f}, p={r['procrustes p']:.3g})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tsne_plot(z_u: np.ndarray, z_e: np.ndarray, labels: np.ndarray, path: Path, seed: int = 0,
              names: list[str] | None = None) -> Path:
    """t-SNE of the aligned representations of both models: colour = the positive key (e.g. the instruction,
    named in a legend by `names`), marker = model."""
    from sklearn.manifold import TSNE

    points = np.concatenate([z_u, z_e])
    perplexity = float(min(30, max(5, (len(points) - 1) // 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)
    colours = np.concatenate([labels, labels])
    markers = np.array(["o"] * len(z_u) + ["^"] * len(z_e))
    return scatter_2d(xy, colours, markers, path, "aligned representations (t-SNE)",
                      {"o": "understanding (video)", "^": "execution (agent)"}, names)
