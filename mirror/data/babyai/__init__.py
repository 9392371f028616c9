"""BabyAI data: expert demonstrations and the data module that pairs episodes with clips."""
