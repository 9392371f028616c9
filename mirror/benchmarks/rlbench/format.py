"""Facts of the PerAct / RVT / ARP on-disk format and of the RLBench setup that `mirror` follows."""

from __future__ import annotations

import re
from pathlib import Path

CAMERAS = ("front", "left_shoulder", "right_shoulder", "wrist")
SCENE_BOUNDS = (-0.3, -0.5, 0.6, 0.7, 0.5, 1.6)  # x0, y0, z0, x1, y1, z1 in metres
TASKS = (
    "open_drawer", "slide_block_to_color_target", "sweep_to_dustpan_of_size", "meat_off_grill", "turn_tap",
    "put_item_in_drawer", "close_jar", "reach_and_drag", "stack_blocks", "light_bulb_in", "put_money_in_safe",
    "place_wine_at_rack_location", "put_groceries_in_cupboard", "place_shape_in_shape_sorter", "push_buttons",
    "insert_onto_square_peg", "stack_cups", "place_cups",
)
LOW_DIM = "low_dim_obs.pkl"
DESCRIPTIONS = "variation_descriptions.pkl"
VARIATION = "variation_number.pkl"
DEPTH_SCALE = 2**24 - 1  # depth PNGs hold a 24-bit integer in R (high), G, B (low)


def episodes_folder(root: str | Path, task: str) -> Path:
    return Path(root) / task / "all_variations" / "episodes"


def episode_indices(root: str | Path, task: str) -> list[int]:
    """Episode numbers present for a task, in order."""
    folder = episodes_folder(root, task)
    if not folder.is_dir():
        return []
    found = (re.fullmatch(r"episode(\d+)", p.name) for p in folder.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def episode_folder(root: str | Path, task: str, index: int) -> Path:
    return episodes_folder(root, task) / f"episode{index}"


def frame_path(folder: Path, camera: str, kind: str, frame: int) -> Path:
    """`kind` is rgb or depth: `<episode>/<camera>_<kind>/<frame>.png`."""
    return folder / f"{camera}_{kind}" / f"{frame}.png"
