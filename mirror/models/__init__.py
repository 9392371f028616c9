"""Models: action understanding (U) and embodied execution (E), joined through `protocol`."""
