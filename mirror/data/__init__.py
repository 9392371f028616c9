"""Data: demonstrations, their training samples and alignment pairs, and the loaders that feed them."""
