"""The BabyAI action-language agent (after Milano & Nolfi), the execution model E of the embedded default.

Words start as identity vectors over the level vocabulary, so any meaning they acquire comes from acting;
a transformer over the instruction gives a 128-d sentence embedding; a CNN encodes the 7 x 7 symbolic view;
the instruction's words attend to the view's cells; a GRU carries the episode so far; a residual MLP maps
to the 7 actions. Trained by behavioural cloning on whole expert episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch
import torch.nn.functional as F
from minigrid.core.actions import Actions
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mirror.config import ExecutionConfig
from mirror.errors import MirrorError
from mirror.models.protocol import BranchOutput, DataSpec

NUM_ACTIONS = len(Actions)  # minigrid's: left, right, forward, pickup, drop, toggle, done

# Symbolic view channels: object type (11), colour (6), state (3); one embedding table with offsets.
CHANNEL_SIZES = (11, 6, 3)


class AgentFeature(str, Enum):
    """Which representation is the alignment feature e."""

    last_block = "last_block"  # the residual MLP's last block, mean over the episode's steps (default)
    sentence = "sentence"  # the instruction's sentence embedding


@dataclass
class BabyAIAgentConfig(ExecutionConfig):
    dim: int = 128
    view_dim: int = 64  # width of the view's cell tokens
    text_layers: int = 2
    heads: int = 4
    mlp_blocks: int = 2
    feature: AgentFeature = AgentFeature.last_block
    lr: float = 1e-3


def vocabulary(instructions: list[str]) -> list[str]:
    """The level vocabulary: every word of every instruction, sorted; index 0 is padding."""
    return ["<pad>"] + sorted({w for text in instructions for w in text.split()})


class CrossAttention(nn.Module):
    """Multi-head attention of instruction words (width `dim`) over view cells (width `kv_dim`, projected
    to `kv_dim` inside), averaged over each instruction's words and projected back to `dim`.

    Computed in an equivalent, cheaper order, since a view has 49 cells but an instruction only a few words:
    each word's query is carried through the key projection once per instruction (the key bias only shifts
    every score of a query alike, which the softmax ignores), and the word average is taken before the value
    and output projections (both linear). The parameters are those of plain attention (q, k, v, out)."""

    def __init__(self, dim: int, kv_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, kv_dim), nn.Linear(kv_dim, kv_dim), nn.Linear(kv_dim, kv_dim)
        self.out = nn.Linear(kv_dim, dim)

    def forward(self, words: Tensor, keep: Tensor, cells: Tensor, index: Tensor | None = None) -> Tensor:
        """words (N, L, dim) with `keep` (N, L) marking real words; cells (V, C, kv_dim); view v is read by
        instruction `index[v]` (by instruction v without `index`). Returns (V, dim)."""
        h = self.heads
        q = self.q(words).unflatten(-1, (h, -1))  # N, L, H, d
        scale = q.shape[-1] ** -0.5
        queries = torch.einsum("nlhd,hdc->nhlc", q, self.k.weight.unflatten(0, (h, -1))) * scale  # N, H, L, kv
        weights = keep.float() / keep.sum(1, keepdim=True)  # N, L
        if index is not None:
            queries, weights = queries[index], weights[index]
        attention = (queries.flatten(1, 2) @ cells.transpose(1, 2)).softmax(-1).unflatten(1, (h, -1))  # V, H, L, C
        mixed = torch.einsum("vhlc,vl->vhc", attention, weights) @ cells  # V, H, kv: word-averaged cell mixtures
        values = torch.einsum("vhc,hdc->vhd", mixed, self.v.weight.unflatten(0, (h, -1))) + self.v.bias.view(h, -1)
        return self.out(values.flatten(1))


class ResidualBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class BabyAIAgent(nn.Module):
    config_class = BabyAIAgentConfig

    def __init__(self, cfg: BabyAIAgentConfig, spec: DataSpec):
        super().__init__()
        self.cfg, d = cfg, cfg.dim
        self.words = vocabulary(spec.instructions)
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.register_buffer("instruction_tokens", self.tokenize(spec.instructions), persistent=False)

        self.word_embedding = nn.Embedding(len(self.words), len(self.words), padding_idx=0)
        with torch.no_grad():
            self.word_embedding.weight.copy_(torch.eye(len(self.words)))
            self.word_embedding.weight[0].zero_()
        self.word_proj = nn.Linear(len(self.words), d)
        self.word_position = nn.Parameter(0.02 * torch.randn(self.instruction_tokens.shape[1], d))
        layer = nn.TransformerEncoderLayer(d, cfg.heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.text = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.text_norm = nn.LayerNorm(d)

        v = cfg.view_dim
        self.cell_embedding = nn.Embedding(sum(CHANNEL_SIZES), 16)
        self.register_buffer("channel_offsets", torch.tensor([0, CHANNEL_SIZES[0], sum(CHANNEL_SIZES[:2])]),
                             persistent=False)
        self.cnn = nn.Sequential(nn.Conv2d(16, v, 3, padding=1), nn.GELU(), nn.Conv2d(v, v, 3, padding=1), nn.GELU())
        self.cell_position = nn.Parameter(0.02 * torch.randn(49, v))
        self.direction = nn.Embedding(4, v)
        self.attend = CrossAttention(d, v, cfg.heads)
        self.layout = nn.Sequential(nn.Linear(v, 16), nn.Flatten(), nn.Linear(49 * 16, d))
        self.fuse_norm = nn.LayerNorm(d)
        self.memory = nn.GRU(d, d, batch_first=True)
        self.blocks = nn.Sequential(*(ResidualBlock(d) for _ in range(cfg.mlp_blocks)))
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, NUM_ACTIONS))
        self.feature_dim = d

    def tokenize(self, texts: list[str]) -> Tensor:
        """Word ids (N, L) padded with 0; a word outside the level vocabulary is an error naming it."""
        for text in texts:
            unknown = [w for w in text.split() if w not in self.word_index]
            if unknown or not text.split():
                raise MirrorError(f"instruction '{text}': {', '.join(repr(w) for w in unknown) or 'no words'} not in "
                                  f"the agent's vocabulary ({', '.join(self.words[1:])})")
        ids = [[self.word_index[w] for w in t.split()] for t in texts]
        out = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def encode_instructions(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Word features (N, L, d), their padding mask (N, L) and the sentence embedding (N, d)."""
        return self.encode_tokens(self.instruction_tokens[ids])

    def encode_tokens(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        tokens = tokens[:, : self.word_position.shape[0]]
        pad = tokens == 0
        x = self.word_proj(self.word_embedding(tokens)) + self.word_position[: tokens.shape[1]]
        x = self.text(x, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        sentence = self.text_norm((x * keep).sum(1) / keep.sum(1))
        return x, pad, sentence

    def encode_views(self, images: Tensor, directions: Tensor) -> Tensor:
        """(N, 7, 7, 3) symbolic views and (N,) directions -> (N, 49, view_dim) cell tokens."""
        cells = self.cell_embedding(images.long() + self.channel_offsets).sum(-2)  # N, 7, 7, 16
        x = self.cnn(cells.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2) + self.cell_position
        return x + self.direction(directions.long()).unsqueeze(1)

    def fuse(self, words: Tensor, pad: Tensor, sentence: Tensor, views: Tensor, index: Tensor | None = None
             ) -> Tensor:
        """Language attends to vision (each step's instruction words query its view's cells), plus the
        sentence and a summary of the whole view's layout (walls and obstacles matter whatever the goal).
        View v belongs to instruction `index[v]` (to instruction v without `index`)."""
        attended = self.attend(words, ~pad, views, index)
        sentence = sentence if index is None else sentence[index]
        return self.fuse_norm(attended + sentence + self.layout(views))

    def forward(self, inputs: dict, task: bool) -> BranchOutput:
        """inputs: `images` (B, T, 7, 7, 3), `directions`, `actions`, `mask` (B, T) and `instruction` (B,).

        Views, the memory and the blocks see the valid steps only (episodes are padded to the longest in the
        batch; the GRU runs on the packed sequences).
        """
        words, pad, sentence = self.encode_instructions(inputs["instruction"])
        if self.cfg.feature == AgentFeature.sentence and not task:
            return BranchOutput(sentence)
        mask = inputs["mask"]
        b, t = mask.shape
        episode = torch.arange(b, device=mask.device)[:, None].expand(b, t)[mask]
        views = self.encode_views(inputs["images"][mask], inputs["directions"][mask])
        fused = views.new_zeros(b, t, self.cfg.dim)
        fused[mask] = self.fuse(words, pad, sentence, views, episode)
        lengths = mask.sum(1)
        packed = pack_padded_sequence(fused, lengths.cpu(), batch_first=True, enforce_sorted=False)
        memory = pad_packed_sequence(self.memory(packed)[0], batch_first=True, total_length=t)[0]
        hidden = self.blocks(memory[mask])  # valid steps only, (V, d)
        if self.cfg.feature == AgentFeature.sentence:
            feature = sentence
        else:
            feature = hidden.new_zeros(b, self.cfg.dim).index_add_(0, episode, hidden) / lengths[:, None]
        if not task:
            return BranchOutput(feature)
        logits = self.head(hidden)
        target = inputs["actions"][mask].long()
        loss = F.cross_entropy(logits, target)
        accuracy = (logits.argmax(-1) == target).float().mean()
        return BranchOutput(feature, loss, {"action_acc": accuracy})

    @torch.no_grad()
    def step(self, observation: dict, instruction: str, state: Tensor | None = None) -> tuple[int, Tensor]:
        """The greedy action for one minigrid observation (`image` 7 x 7 x 3, `direction`) and the memory."""
        image = np.asarray(observation.get("image")) if isinstance(observation, dict) else None
        if image is None or image.shape != (7, 7, 3) or "direction" not in observation:
            got = f"image {image.shape}" if image is not None and image.ndim else type(observation).__name__
            raise MirrorError(f"the BabyAI agent acts on a minigrid observation: a dict with 'image' (7, 7, 3) and "
                              f"'direction'; got {got}")
        device = next(self.parameters()).device
        images = torch.as_tensor(observation["image"], device=device)[None]
        directions = torch.tensor([int(observation["direction"])], device=device)
        action, state = self.act(self.tokenize([instruction]).to(device), images, directions, state)
        return int(action[0]), state

    def act(self, tokens: Tensor, images: Tensor, directions: Tensor, state: Tensor | None,
            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """One step for N parallel episodes given their instruction tokens: actions (greedy, or sampled
        from the policy with `generator`) and the next memory state."""
        words, pad, sentence = self.encode_tokens(tokens)
        fused = self.fuse(words, pad, sentence, self.encode_views(images, directions))
        out, state = self.memory(fused.unsqueeze(1), state)
        logits = self.head(self.blocks(out[:, 0]))
        if generator is None:
            return logits.argmax(-1), state
        return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0], state
