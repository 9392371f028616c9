"""Training: the joint LightningModule, optimisers, the trainer, the run directory, and `mirror eval`."""
