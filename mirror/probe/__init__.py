"""Probing representations: how well two models' representations align (paper Sec. 2; Milano & Nolfi)."""
