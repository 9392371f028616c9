"""Embodied execution (E): the BabyAI agent, and ARP on RVT-2's multi-view transformer for RLBench."""
