"""The core idea: align understanding and execution representations in a shared space (paper Sec. 3)."""

from mirror.align.alignment import AlignOutput, MirrorAlignment
from mirror.align.loss import InfoNCE, bidirectional_infonce, gather, positive_targets
from mirror.align.metrics import recall_at_k, recall_chance, retrieval_hits

__all__ = [
    "AlignOutput",
    "InfoNCE",
    "MirrorAlignment",
    "bidirectional_infonce",
    "gather",
    "positive_targets",
    "recall_at_k",
    "recall_chance",
    "retrieval_hits",
]
