"""mirror: joint training of action understanding and embodied execution, aligned like mirror neurons."""

__version__ = "0.1.0"


def load(checkpoint, device="cpu"):
    """A trained run's models from a `mirror train` checkpoint (see `mirror.api`); imports torch on first use."""
    from mirror.api import load as load_trained

    return load_trained(checkpoint, device)
