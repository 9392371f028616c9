"""What a run's results say: `mirror report` (tables over runs, comparisons, their statistics) and U's
recognition of held-out clips, read from the files training and evaluation wrote."""
