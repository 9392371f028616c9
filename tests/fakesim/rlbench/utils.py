import os
import pickle
import re
from os import listdir
from os.path import exists, join

import numpy as np
from PIL import Image

from rlbench.backend.scene import CAMERAS

EPISODES_FOLDER, VARIATIONS_ALL_FOLDER, VARIATIONS_FOLDER = "episodes", "all_variations", "variation%d"


def natsorted(names):
    return sorted(names, key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)])


def get_stored_demos(amount, image_paths, dataset_root, variation_number, task_name, obs_config,
                     random_selection=True, from_episode_number=0):
    """As the fork's: the `from_episode_number`-th of the natural-sorted episode folders, its variation from
    variation_number.pkl, every camera's rgb and depth folder holding one image per observation ("Broken
    dataset assumption" otherwise), images decoded unless `image_paths` (point clouds are not computed here)."""
    task_root = join(dataset_root, task_name)
    if not exists(task_root):
        raise RuntimeError(f"Can't find the demos for {task_name} at: {task_root}")
    if variation_number == -1:
        examples_path = join(task_root, VARIATIONS_ALL_FOLDER, EPISODES_FOLDER)
    else:
        examples_path = join(task_root, VARIATIONS_FOLDER % variation_number, EPISODES_FOLDER)
    examples = [e for e in listdir(examples_path) if ".DS_Store" not in e]
    if amount == -1:
        amount = len(examples)
    if amount > len(examples):
        raise RuntimeError(f"You asked for {amount} examples, but only {len(examples)} were available.")
    if random_selection:
        selected_examples = np.random.choice(examples, amount, replace=False)
    else:
        selected_examples = natsorted(examples)[from_episode_number:from_episode_number + amount]
    demos = []
    for example in selected_examples:
        example_path = join(examples_path, example)
        with open(join(example_path, "low_dim_obs.pkl"), "rb") as f:
            obs = pickle.load(f)
        if variation_number == -1:
            with open(join(example_path, "variation_number.pkl"), "rb") as f:
                obs.variation_number = pickle.load(f)
        else:
            obs.variation_number = variation_number
        folders = {f"{cam}_{kind}": join(example_path, f"{cam}_{kind}") for cam in CAMERAS for kind in ("rgb", "depth")}
        if not all(len(obs) == len(listdir(folder)) for folder in folders.values()):
            raise RuntimeError("Broken dataset assumption")
        for i in range(len(obs)):
            for name, folder in folders.items():
                setattr(obs[i], name, join(folder, f"{i}.png"))
            if not image_paths:
                for name in folders:
                    setattr(obs[i], name, np.array(Image.open(getattr(obs[i], name))))
        log = os.environ.get("MIRROR_FAKESIM_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{task_name} {from_episode_number} {os.environ.get('RANK', '0')} {os.getpid()}\n")
        demos.append(obs)
    return demos
