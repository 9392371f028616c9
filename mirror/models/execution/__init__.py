"""Embodied execution (E): policies that act from observations and instructions."""
