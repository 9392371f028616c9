"""mirror: joint training of action understanding and embodied execution, aligned like mirror neurons."""

__version__ = "0.1.0"
