"""Training: the joint LightningModule, optimisers, the trainer and the run directory."""
