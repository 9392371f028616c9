"""BabyAI levels of minigrid: quiet level generation, the expert bot, and episodes with point-of-view frames.

Seeds make everything reproducible: the same level and seed give the same layout, mission and expert.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import gymnasium as gym
import minigrid  # noqa: F401  (registers the BabyAI-* environments)
import numpy as np
from minigrid.utils.baby_ai_bot import BabyAIBot


def env_id(level: str) -> str:
    return level if level.startswith("BabyAI-") else f"BabyAI-{level}-v0"


def make(level: str) -> gym.Env:
    """The level's environment; an unknown level fails with its name."""
    try:
        return gym.make(env_id(level))
    except gym.error.Error as err:
        raise ValueError(f"unknown BabyAI level '{level}' ({err})") from None


def reset(env: gym.Env, seed: int) -> dict:
    """Reset to `seed`, silencing the level generator's 'Sampling rejected' prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        obs, _ = env.reset(seed=seed)
    return obs


@dataclass
class Episode:
    """One expert episode: T steps of observations and actions, T + 1 point-of-view frames."""

    level: str
    seed: int
    mission: str
    images: np.ndarray  # (T, 7, 7, 3) uint8 symbolic view: object, colour, state
    directions: np.ndarray  # (T,) uint8
    actions: np.ndarray  # (T,) uint8
    frames: np.ndarray  # (T + 1, H, W, 3) uint8 point-of-view renders, the last after the final action
    success: bool
    reward: float


def expert_episode(level: str, seed: int, tile: int = 8) -> Episode:
    """Run minigrid's BabyAI bot (a new one per episode, replanned each step) on `level` at `seed`."""
    env = make(level)
    obs = reset(env, seed)
    mission = obs["mission"]
    base = env.unwrapped
    bot = BabyAIBot(base)
    images, directions, actions, frames = [], [], [], []
    action, reward, done = None, 0.0, False
    while not done:
        images.append(obs["image"])
        directions.append(obs["direction"])
        frames.append(base.get_pov_render(tile_size=tile))
        action = int(bot.replan(action))
        obs, reward, terminated, truncated, _ = env.step(action)
        actions.append(action)
        done = terminated or truncated
    frames.append(base.get_pov_render(tile_size=tile))
    env.close()
    return Episode(
        level=level,
        seed=seed,
        mission=mission,
        images=np.stack(images).astype(np.uint8),
        directions=np.asarray(directions, dtype=np.uint8),
        actions=np.asarray(actions, dtype=np.uint8),
        frames=np.stack(frames).astype(np.uint8),
        success=bool(terminated and reward > 0),
        reward=float(reward),
    )
