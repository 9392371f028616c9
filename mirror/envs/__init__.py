"""Environments: BabyAI (minigrid) levels, rollouts, and the worker processes simulators run in."""
