"""ARP weights: the state dict of ARP's released RLBench checkpoint (mlzxy/arp, `model_state` of its
`PolicyNetwork`) mapped to this ARP key by key, strictly, for `mirror convert arp` and `execution.checkpoint`.

ARP's keys: `mvt1.*` and `mvt2.*` (the stage MVTs), `policy.*` (the `AutoRegressivePolicy`: blocks 0-3 are the
cross blocks, 4-7 the self blocks; token predictors 1-2 the heatmap upsamplers, 3-7 the class heads; token
embedders 3-5 hold the fixed sine/cosine frequencies of the rotation code, 6-7 the grip and collision tables).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from mirror.errors import MirrorError
from mirror.models.execution.policy import sine_frequencies
from mirror.models.weights import read_state_dict

Rule = tuple[str, Callable[[re.Match], str]]
WB = r"(weight|bias)"

MVT_RULES: list[Rule] = [
    (r"pos_encoding", lambda m: "position"),
    (rf"proprio_preprocess\.linear\.{WB}", lambda m: f"proprio.0.{m[1]}"),
    (rf"proprio_preprocess\.norm\.{WB}", lambda m: f"proprio.1.{m[1]}"),
    (rf"patchify\.conv2d\.{WB}", lambda m: f"patchify.0.{m[1]}"),
    (rf"patchify\.norm\.{WB}", lambda m: f"patchify.1.{m[1]}"),
    (rf"lang_preprocess\.linear\.{WB}", lambda m: f"language.0.{m[1]}"),
    (rf"lang_preprocess\.norm\.{WB}", lambda m: f"language.1.{m[1]}"),
    (rf"fc_bef_attn\.linear\.{WB}", lambda m: f"widen.{m[1]}"),
    (rf"fc_aft_attn\.linear\.{WB}", lambda m: f"narrow.{m[1]}"),
    (rf"layers\.(\d+)\.0\.norm\.{WB}", lambda m: f"blocks.{m[1]}.norm1.{m[2]}"),
    (r"layers\.(\d+)\.0\.fn\.to_(q|kv)\.weight", lambda m: f"blocks.{m[1]}.attn.to_{m[2]}.weight"),
    (rf"layers\.(\d+)\.0\.fn\.to_out\.{WB}", lambda m: f"blocks.{m[1]}.attn.out.{m[2]}"),
    (rf"layers\.(\d+)\.1\.norm\.{WB}", lambda m: f"blocks.{m[1]}.norm2.{m[2]}"),
    (rf"layers\.(\d+)\.1\.fn\.net\.0\.{WB}", lambda m: f"blocks.{m[1]}.ff.proj.{m[2]}"),
    (rf"layers\.(\d+)\.1\.fn\.net\.2\.{WB}", lambda m: f"blocks.{m[1]}.ff.out.{m[2]}"),
]
BLOCK_RULES: list[Rule] = [  # inside one ARP ChunkTransformerLayer
    (rf"norm_cond\.{WB}", lambda m: f"norm_c.{m[1]}"),
    (rf"cond_attn\.q_attn\.{WB}", lambda m: f"cross.q.{m[1]}"),
    (rf"cond_attn\.kv_attn\.{WB}", lambda m: f"cross.kv.{m[1]}"),
    (rf"cond_attn\.c_proj\.{WB}", lambda m: f"cross.out.{m[1]}"),
    (rf"adaLN_modulation\.1\.{WB}", lambda m: f"modulation.1.{m[1]}"),
    (rf"ln_attn\.{WB}", lambda m: f"norm1.{m[1]}"),
    (rf"ln_mlp\.{WB}", lambda m: f"norm2.{m[1]}"),
    (rf"attn\.c_attn\.{WB}", lambda m: f"attn.qkv.{m[1]}"),
    (rf"attn\.c_proj\.{WB}", lambda m: f"attn.out.{m[1]}"),
    (rf"mlp\.fc1\.{WB}", lambda m: f"mlp.0.{m[1]}"),
    (rf"mlp\.fc2\.{WB}", lambda m: f"mlp.3.{m[1]}"),
]
FREQUENCIES = r"policy\.token_embedders\.[345]\.div_term"  # constants of the rotation code, not weights


def _rename(rules: list[Rule], key: str) -> str | None:
    for pattern, target in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return target(match)
    return None


def _block(index: int, rest: str, cross_layers: int) -> str | None:
    inner = _rename(BLOCK_RULES, rest)
    if inner is None:
        return None
    return f"head.cross.{index}.{inner}" if index < cross_layers else f"head.blocks.{index - cross_layers}.{inner}"


def arp_key(key: str, cross_layers: int = 4) -> str | None:
    """Our name for one of ARP's keys (None if ARP's model has no such parameter)."""
    policy: list[Rule] = [
        (r"mvt([12])\.(.+)", lambda m: _prefixed(f"mvt.{int(m[1]) - 1}.", _rename(MVT_RULES, m[2]))),
        (r"policy\.chunk_embedder\.chunk_embed\.weight", lambda m: "head.chunk_embedding.weight"),
        (r"policy\.chunk_embedder\.token_type_embed\.weight", lambda m: "head.type_embedding.weight"),
        (r"policy\.pos_emb\.weight", lambda m: "head.position.weight"),
        (r"policy\.token_embedders\.6\.embed\.0\.weight", lambda m: "head.grip_embedding.weight"),
        (r"policy\.token_embedders\.7\.embed\.0\.weight", lambda m: "head.collision_embedding.weight"),
        (rf"policy\.token_predictors\.([12])\.upsample\.net_out\.([024])\.{WB}",
         lambda m: f"head.upsample.{int(m[1]) - 1}.logits.{m[2]}.{m[3]}"),
        (rf"policy\.token_predictors\.([12])\.upsample\.net_mask\.([02])\.{WB}",
         lambda m: f"head.upsample.{int(m[1]) - 1}.mask.{m[2]}.{m[3]}"),
        (rf"policy\.token_predictors\.([3-7])\.linear\.{WB}", lambda m: f"head.heads.{int(m[1]) - 3}.{m[2]}"),
        (r"policy\.blocks\.(\d+)\.(.+)", lambda m: _block(int(m[1]), m[2], cross_layers)),
        (rf"policy\.final_ln\.{WB}", lambda m: f"head.norm.{m[1]}"),
    ]
    return _rename(policy, key)


def _prefixed(prefix: str, rest: str | None) -> str | None:
    return None if rest is None else prefix + rest


def from_arp(state: dict[str, Tensor], own: dict[str, torch.Size], source: str | Path) -> dict[str, Tensor]:
    """ARP's state dict -> ours (`own`: our keys and shapes). Every ARP key must map to one of ours with the
    same shape and every one of ours must be covered; otherwise a one-line `MirrorError` names the first bad
    key."""
    cross_layers = len({k.split(".")[2] for k in own if k.startswith("head.cross.")})
    frequency = sine_frequencies(own["head.position.weight"][1])
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if re.fullmatch(FREQUENCIES, key):
            if value.shape != (1, *frequency.shape) or not torch.allclose(value.flatten().float(), frequency):
                raise MirrorError(f"{source}: ARP key '{key}' is not the sine/cosine code this policy uses")
            continue
        ours = arp_key(key, cross_layers)
        if ours is None or ours not in own:
            raise MirrorError(f"{source}: ARP key '{key}' has no counterpart in this ARP")
        if value.shape != own[ours]:
            raise MirrorError(f"{source}: shape of ARP key '{key}' is {list(value.shape)}, "
                              f"'{ours}' needs {list(own[ours])}")
        if ours in out:
            raise MirrorError(f"{source}: ARP key '{key}' maps to '{ours}' a second time")
        out[ours] = value
    missing = [k for k in own if k not in out]
    if missing:
        raise MirrorError(f"{source}: not ARP's model: nothing provides '{missing[0]}' "
                          f"({len(missing)} parameters missing)")
    return out


def ours_from_file(own: dict[str, torch.Size], path: str | Path) -> dict[str, Tensor]:
    """Weights for an ARP whose keys and shapes are `own`, from ARP's checkpoint or one in our layout."""
    state = read_state_dict(path)
    if any(k.startswith(("mvt1.", "policy.")) for k in state):
        return from_arp(state, own, path)
    bad = sorted(set(own) ^ set(state)) or [k for k in own if own[k] != state[k].shape]
    if bad:
        raise MirrorError(f"{path}: not weights of this ARP (first mismatched key '{bad[0]}')")
    return state


def shapes(model: nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in model.state_dict().items()}


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load ARP weights (either layout) into `model`, an ARP."""
    model.load_state_dict(ours_from_file(shapes(model), path))

