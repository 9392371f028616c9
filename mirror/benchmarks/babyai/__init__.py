"""BabyAI (minigrid): levels and the expert bot, demonstrations, the data module that pairs episodes with clips,
rollouts and the end-of-training summary."""
