"""What training knows of an episode without its images: its keyframes and one sample per keyframe."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Sample:
    """A keyframe training sample: the observation at `obs_frame` -> the gripper at keyframe `target_frame`."""

    obs_frame: int
    target_frame: int
    step: int  # index of the keyframe in the episode
    pose: list[float]  # target xyz + quaternion xyzw
    gripper_open: float
    ignore_collisions: float  # at the keyframe (ARP's label)
    ignore_collisions_before: float  # at the frame before the keyframe (PerAct's and RVT's label)
    proprio: list[float]  # at obs_frame: gripper open, two finger joint positions


@dataclass
class EpisodeInfo:
    """What training needs to know of an episode without its images."""

    task: str
    index: int
    variation: int
    descriptions: list[str]  # index 0 is the canonical one
    length: int
    keyframes: list[int]
    samples: list[Sample] = field(default_factory=list)
